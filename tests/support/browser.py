"""Serving the dashboard on a free port and driving the system Chromium with Playwright.

Used by tests/test_browser_e2e.py and scripts/screenshots.py. The browser is Debian's
/usr/bin/chromium: Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from pipeline.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_dashboard(home: Path, port: int | None = None, timeout_s: float = 90.0) -> Iterator[str]:
    """Serve the dashboard for `home` with the command `timelines dashboard` runs (bound to
    127.0.0.1) and yield its base URL; stop it after."""
    from timelines.cli import dashboard_command

    port = port or free_port()
    env = os.environ | {"TIMELINES_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    log = (home.parent / f"streamlit-{port}.log").open("wb")
    command = [*dashboard_command(Settings(home), port), "--server.address", "127.0.0.1",
               "--server.fileWatcherType", "none"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process, timeout_s)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_healthy(base: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before serving")
        try:
            if httpx.get(f"{base}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"the dashboard did not answer on {base} within {timeout_s:.0f} s")


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless system Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_view(page: Any, url: str, title: str, timeout_ms: int = 60_000) -> None:
    """Go to a dashboard URL and wait until its title and charts have rendered."""
    page.goto(url)
    page.get_by_role("heading", name=title, level=1).wait_for(timeout=timeout_ms)
    wait_until_idle(page, timeout_ms)


def wait_until_idle(page: Any, timeout_ms: int = 60_000) -> None:
    """Wait for Streamlit to finish the run and for every chart to have drawn."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
                 .every(c => c.querySelector('canvas, svg'))""",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)


def full_page_screenshot(page: Any, path: Path, max_height: int | None = None) -> None:
    """Screenshot the whole page (or its top max_height pixels).

    Streamlit scrolls inside its main block, not the document, so the viewport is first
    made as tall as the content.
    """
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]')
                || document.querySelector('section.main');
            return main ? main.scrollHeight : document.body.scrollHeight;
        }"""
    )
    size = page.viewport_size
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height) + 40)})
    wait_until_idle(page)
    path.parent.mkdir(parents=True, exist_ok=True)
    if max_height is None:
        page.screenshot(path=str(path), full_page=True)
    else:
        clip = {"x": 0, "y": 0, "width": size["width"], "height": min(max_height, int(height) + 40)}
        page.screenshot(path=str(path), clip=clip)
    page.set_viewport_size(size)
