"""A freshly started dashboard: every page's first view, opened all at once, has no exception.

The first views after a start run many page scripts at the same time in the server's script
threads; heavy modules imported lazily inside those threads used to race ("partially
initialized module 'pandas'"). Each test starts its own server so the views really are first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.settings import Settings
from tests.support.browser import (
    CHROMIUM,
    DESKTOP,
    chromium,
    serve_dashboard,
    wait_until_idle,
)
from tests.support.dashboard import publish_sample

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
]

# every documented address -> its page title (h1); the overview thrice, as two visitors of a
# shared link plus one of its documented address would open it (two were enough to crash it)
ADDRESSES = {
    "/": "How long do USCIS cases take?",
    "/?": "How long do USCIS cases take?",
    "/overview": "How long do USCIS cases take?",
    "/processing-times?form=I-485&office=NBC": "Processing times",
    "/trends?form=I-485": "Trends",
    "/official": "Official vs community",
    "/my-case": "My case",
    "/submit": "Submit your case history",
    "/delete": "Delete a submission",
    "/health": "Pipeline health",
    "/methodology": "Methodology and privacy",
    "/download": "Download the open data",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A published synthetic sample."""
    return publish_sample(tmp_path_factory.mktemp("first-view") / "home", n_cases=600, seed=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless system Chromium."""
    with chromium() as launched:
        yield launched


def exceptions(page: Any) -> list[str]:
    """The text of every Python exception Streamlit shows on the page."""
    return [str(e.inner_text()) for e in page.locator('[data-testid="stException"]').all()]


def open_all_at_once(browser: Any, base: str, viewport: dict[str, int]) -> dict[str, Any]:
    """Open every address in its own tab without waiting, so the first runs overlap."""
    tabs = {}
    for path in ADDRESSES:
        context = browser.new_context(viewport=viewport)
        tab = context.new_page()
        tab.goto(base + path, wait_until="commit")
        tabs[path] = tab
    for path, tab in tabs.items():
        tab.get_by_role("heading", name=ADDRESSES[path], level=1).wait_for(timeout=120_000)
        wait_until_idle(tab, 120_000)
    return tabs


def test_first_views_on_a_fresh_server_have_no_exception(home: Settings, browser: Any) -> None:
    with serve_dashboard(home.home) as base:
        tabs = open_all_at_once(browser, base, DESKTOP)
        try:
            shown = {path: exceptions(tab) for path, tab in tabs.items()}
            assert {p: e for p, e in shown.items() if e} == {}
            assert "Page not found" not in tabs["/overview"].content()
        finally:
            for tab in tabs.values():
                tab.context.close()
