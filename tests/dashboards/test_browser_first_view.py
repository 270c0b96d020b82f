"""A freshly started dashboard: every page's first view, opened all at once, has no exception.

The first views after a start run many page scripts at the same time in the server's script
threads; heavy modules imported lazily inside those threads used to race ("partially
initialized module 'pandas'"). Each test starts its own server so the views really are first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.settings import Settings
from tests.support.browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
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


PHONE_PAGES = {
    "/": "How long do USCIS cases take?",
    "/processing-times?form=I-485": "Processing times",
    "/trends?form=I-485&period=quarter": "Trends",
    "/official": "Official vs community",
    "/my-case?form=I-485&office=NBC&received=2025-09-15&stage=biometrics": "My case",
    "/submit": "Submit your case history",
    "/delete": "Delete a submission",
    "/health": "Pipeline health",
    "/methodology": "Methodology and privacy",
    "/download": "Download the open data",
}
MAIN_WIDTH = """() => document.querySelector('[data-testid="stMain"]').scrollWidth"""
WIDEST_CHART = """() => Math.max(0, ...[...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
    .map(c => { const drawn = c.querySelector('canvas, svg');
                return drawn ? drawn.getBoundingClientRect().right : 0; }))"""


def test_every_page_fits_a_phone_and_my_case_answers_on_the_first_screen(
    home: Settings, browser: Any
) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=1)
    page = context.new_page()
    try:
        with serve_dashboard(home.home) as base:
            for path, title in PHONE_PAGES.items():
                page.goto(base + path)
                page.get_by_role("heading", name=title, level=1).wait_for(timeout=120_000)
                wait_until_idle(page, 120_000)
                assert exceptions(page) == [], path
                width = page.evaluate(MAIN_WIDTH)
                assert width <= PHONE["width"] + 1, f"{path} scrolls sideways on a phone"
                assert page.evaluate(WIDEST_CHART) <= PHONE["width"] + 1, f"a chart on {path} is cut"
                grids = page.locator('[data-testid="stDataFrame"]').filter(visible=True)
                stacked = page.locator("table.stacked").filter(visible=True)
                if path.startswith(("/processing-times", "/official")):
                    assert grids.count() == 0 and stacked.count() > 0, f"{path}: tables stacked"
            answer = next(p for p in PHONE_PAGES if p.startswith("/my-case"))
            page.goto(base + answer)
            page.get_by_role("heading", name="My case", level=1).wait_for(timeout=120_000)
            wait_until_idle(page, 120_000)
            verdict = page.get_by_text(re.compile(r"^Your wait (is|so far)"))
            box = verdict.first.bounding_box()
            assert box is not None and box["y"] + box["height"] <= PHONE["height"] * 1.6, \
                "the verdict is near the top on a phone"
            # the chances come a moment after the verdict on a busy machine: wait for them
            page.get_by_text("Decision within 90 days").first.wait_for(state="visible", timeout=60_000)
    finally:
        context.close()
