"""`timelines dashboard`, `demo` and `serve` stop their children on SIGTERM and SIGINT.

Each test starts the real command, waits until it serves, sends the signal, and checks that
the command exits cleanly, without Python warnings, and leaves no server listening.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.browser import free_port
from tests.support.cli import child_env, timelines_exe
from tests.support.dashboard import publish_sample

pytestmark = pytest.mark.slow


def start(args: list[str], home: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start `timelines ARGS` in its own process group, output to a log file."""
    with log.open("wb") as out:
        return subprocess.Popen([timelines_exe(), *args], env=child_env(home), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_until(check: object, timeout: float, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until check() is true; fail with the log if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited early ({process.returncode}):\n{log.read_text()}")
        if check():  # type: ignore[operator]
            return
        time.sleep(0.5)
    pytest.fail(f"not ready within {timeout:.0f} s:\n{log.read_text()}")


def answers(url: str) -> bool:
    """Whether something answers HTTP at this address."""
    try:
        httpx.get(url, timeout=2)
    except httpx.HTTPError:
        return False
    return True


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
    """Send the signal to the command alone (not its group) and wait for it."""
    process.send_signal(how)
    try:
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_dashboard_stops_streamlit(tmp_path: Path, how: signal.Signals) -> None:
    home = tmp_path / "home"
    publish_sample(home, n_cases=100)
    port, log = free_port(), tmp_path / "dashboard.log"
    process = start(["dashboard", "--port", str(port)], home, log)
    health = f"http://127.0.0.1:{port}/_stcore/health"
    wait_until(lambda: answers(health), 120, process, log)
    assert stop(process, how) == 0, log.read_text()
    time.sleep(1)
    assert not answers(health), "Streamlit is still serving after the command stopped"
    assert "Traceback" not in log.read_text()


def test_demo_stops_streamlit_and_the_prefect_server(tmp_path: Path) -> None:
    home, port, log = tmp_path / "home", free_port(), tmp_path / "demo.log"
    process = start(["demo", "--cases", "200", "--port", str(port)], home, log)
    health = f"http://127.0.0.1:{port}/_stcore/health"
    wait_until(lambda: answers(health), 400, process, log)
    prefect = subprocess.run(["pgrep", "-f", f"prefect.*{home}"], capture_output=True, text=True)
    assert stop(process, signal.SIGTERM) == 0, log.read_text()
    time.sleep(1)
    assert not answers(health)
    orphans = subprocess.run(["pgrep", "-s", str(process.pid)], capture_output=True, text=True)
    assert orphans.stdout.strip() == "", f"left running: {orphans.stdout} (prefect: {prefect.stdout})"
    text = log.read_text()
    assert "never awaited" not in text
    # (Prefect's temporary server may log its own start-up hiccups; the stop must not add any)
    stopping = text.split("(Ctrl+C to stop)")[-1]
    assert "Traceback" not in stopping and "dashboard stopped" in stopping
    assert "Stopping temporary server" in stopping


def test_serve_pauses_its_schedules_and_stops_its_prefect_server(tmp_path: Path) -> None:
    home, port, log = tmp_path / "home", free_port(), tmp_path / "serve.log"
    process = start(["serve", "--port", str(port)], home, log)
    beat = home / "scheduler" / "heartbeat.json"
    # the signal comes as soon as the command says it serves, while its runner still starts:
    # the stop must wait for the start, or the schedules would stay active on the server
    wait_until(lambda: "(Ctrl+C stops)" in log.read_text(), 400, process, log)
    assert answers(f"http://127.0.0.1:{port}/api/health")
    assert stop(process, signal.SIGTERM) == 0, log.read_text()
    text = log.read_text()
    assert "never awaited" not in text and "Traceback" not in text
    assert "All deployments have been paused" in text
    assert json.loads(beat.read_text())["stopped_at"] is not None
    time.sleep(1)
    assert not answers(f"http://127.0.0.1:{port}/api/health"), "the Prefect server still runs"


def test_serve_stopped_while_its_prefect_server_starts_leaves_no_server(tmp_path: Path) -> None:
    home, port, log = tmp_path / "home", free_port(), tmp_path / "serve.log"
    process = start(["serve", "--port", str(port)], home, log)
    wait_until(lambda: "starting a local Prefect server" in log.read_text(), 120, process, log)
    assert stop(process, signal.SIGTERM) == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", f"prefect server start .*--port {port}"],
                          capture_output=True, text=True)
    assert left.stdout.strip() == "", f"the Prefect server it started still runs: {left.stdout}"
    assert not answers(f"http://127.0.0.1:{port}/api/health")
