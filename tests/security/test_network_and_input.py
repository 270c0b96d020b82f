"""Attacks from the network and through the command line's input.

- `timelines dashboard` listened on every interface while printing "localhost", so the
  unauthenticated Submit page was reachable from the network. Expected: 127.0.0.1 unless
  --host says otherwise, and it prints where it listens.
- A poll whose every connection was refused exited 0. Expected: non-zero, with a message.
- Invalid UTF-8 was accepted silently; a 30 MB paste got no message. Expected: both refused
  with a message, nothing stored.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import httpx

from pipeline.inbox.folder import pending_files
from pipeline.settings import Settings
from tests.support.browser import free_port
from tests.support.cli import child_env, timelines, timelines_exe


def _listening(port: int) -> set[str]:
    """Local addresses with a socket listening on `port` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if int(hex_port, 16) == port and state == "0A":
                found.add(address)
    return found


def test_the_dashboard_listens_on_loopback_only_and_says_so(settings: Settings) -> None:
    port = free_port()
    process = subprocess.Popen([timelines_exe(), "dashboard", "--port", str(port)],
                               env=child_env(settings.home), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in first, first
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert _listening(port) == {"0100007F"}, _listening(port)  # 127.0.0.1, nothing else
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_poll_with_every_connection_refused_exits_non_zero(settings: Settings) -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    api = {"USCIS_API_BASE_URL": f"http://127.0.0.1:{port}", "USCIS_CLIENT_ID": "id",
           "USCIS_CLIENT_SECRET": "secret"}
    assert timelines("track", "add", "EAC9999103402", "--consent", home=settings.home,
                     **api).returncode == 0
    done = timelines("poll", home=settings.home, timeout=300, **api)
    assert done.returncode != 0
    assert "usable answer" in done.stderr or "did not answer" in (done.stdout + done.stderr)


def test_invalid_utf8_is_refused_with_a_message(settings: Settings, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(b"form_type,office,received_date\nI-765,NSC,2024-01-05\xff\xfe\n")
    done = timelines("submit", str(sheet), "--consent", home=settings.home)
    assert done.returncode == 2 and "not UTF-8" in done.stderr, done.stderr
    assert pending_files(settings.inbox_dir) == []


def test_a_thirty_megabyte_paste_is_refused_with_a_message(settings: Settings) -> None:
    paste = '{"case_status": "' + "x" * 30_000_000 + '"}'
    done = timelines("submit", "-", "--consent", home=settings.home, stdin=paste)
    assert done.returncode == 2
    assert "MB" in done.stdout + done.stderr and "limit" in done.stdout + done.stderr
    assert pending_files(settings.inbox_dir) == []
