"""End to end in headless Chromium: serve the dashboard, visit every page, submit and delete.

Needs Debian's chromium (/usr/bin/chromium), driven by Playwright's Python package with the
system browser. Screenshots of every page go to the test's tmp folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipeline.analytics.official import import_official, read_official
from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.inbox import process_inbox
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.store.db import open_store
from tests.support.browser import (
    CHROMIUM,
    DESKTOP,
    PHONE,
    chromium,
    full_page_screenshot,
    open_view,
    serve_dashboard,
    wait_until_idle,
)
from tests.support.dashboard import publish_sample

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                       "(apt-get install chromium)"),
]
PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
HISTORY = json.loads((PAYLOADS / "torch_case_status_success_with_history.json").read_text())["body"]

# path -> page title (h1)
PAGES = {
    "/": "How long do USCIS cases take?",
    "/processing-times?form=I-485&office=NBC": "Processing times",
    "/trends?form=I-765&period=quarter": "Trends",
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
    """A published synthetic sample with USCIS's official times imported."""
    settings = publish_sample(tmp_path_factory.mktemp("e2e") / "home", n_cases=800, seed=11)
    with open_store(settings.database_path) as con:
        import_official(con, read_official(PAYLOADS / "processing_times_api_legacy.json"))
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    return settings


@pytest.fixture(scope="module")
def dashboard(home: Settings) -> Iterator[str]:
    """The dashboard served on a free port."""
    with serve_dashboard(home.home) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless system Chromium."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh desktop-sized tab."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    yield tab
    context.close()


def assert_no_exception(page: Any) -> None:
    """Fail with the message if Streamlit shows a Python exception."""
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def cases_metric(page: Any) -> str:
    """The value of the overview's Cases metric."""
    metric = page.locator('[data-testid="stMetric"]').filter(has_text="Cases").first
    return str(metric.locator('[data-testid="stMetricValue"]').inner_text()).strip()


def test_every_page_renders_real_content(dashboard: str, page: Any, home: Settings,
                                         tmp_path: Path) -> None:
    expected = current_snapshot(home.published_dir).table("case_stats").filter(
        (pl.col("form_type") == "I-485") & (pl.col("office") == "NBC")).row(0, named=True)
    for path, title in PAGES.items():
        open_view(page, dashboard + path, title)
        assert_no_exception(page)
        name = path.strip("/").split("?")[0] or "overview"
        full_page_screenshot(page, tmp_path / f"{name}.png")
        if path not in {"/submit", "/delete"}:
            assert page.get_by_text("Synthetic sample data").first.is_visible(), path
    open_view(page, dashboard + "/processing-times?form=I-485&office=NBC", "Processing times")
    charts = page.locator('[data-testid="stVegaLiteChart"]')
    # survival curves, histogram, and the offices' medians when two offices have one
    assert charts.count() >= 2 and charts.first.locator("canvas, svg").count() > 0
    assert page.get_by_text(f"{expected['median_days']:,.0f} days", exact=True).first.is_visible()
    nav = page.locator('[data-testid="stSidebarNav"]')
    for title in ("Overview", "Processing times", "My case", "Submit a history", "Download"):
        assert nav.get_by_role("link", name=title, exact=True).is_visible()
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(
        f"{p.strip('/').split('?')[0] or 'overview'}.png" for p in PAGES)


def test_filters_change_the_url_so_a_view_can_be_shared(dashboard: str, page: Any) -> None:
    open_view(page, dashboard + "/processing-times?form=I-485", "Processing times")
    page.get_by_text("office that has it now").click()
    page.wait_for_url(re.compile(r"by=current"))
    wait_until_idle(page)
    assert "form=I-485" in page.url
    shared = page.url
    page.goto("about:blank")
    open_view(page, shared, "Processing times")
    assert page.get_by_role("radio", name="office that has it now").is_checked()


def test_my_case_explains_a_pasted_history(dashboard: str, page: Any) -> None:
    open_view(page, dashboard + "/my-case", "My case")
    page.get_by_role("tab", name="Paste a history").click()  # the typed form comes first
    page.get_by_label("Your case's history").fill(json.dumps(HISTORY))
    page.get_by_role("button", name="Explain my case").first.click()
    page.get_by_text("Your case, explained").wait_for()
    wait_until_idle(page)
    assert page.get_by_text("Now: Case Was Approved").is_visible()
    assert page.get_by_text("Your case was decided after").first.is_visible()
    assert_no_exception(page)


def test_submit_a_history_see_it_counted_then_delete_it(dashboard: str, page: Any,
                                                        home: Settings, tmp_path: Path) -> None:
    open_view(page, dashboard + "/", "How long do USCIS cases take?")
    before = int(cases_metric(page).replace(",", ""))

    open_view(page, dashboard + "/submit", "Submit your case history")
    page.get_by_label("Your case's JSON").fill(json.dumps(HISTORY))
    page.get_by_role("button", name="Preview what would be stored").first.click()
    page.get_by_role("heading", name="What would be stored").wait_for()
    wait_until_idle(page)
    page.get_by_text(re.compile(r"^I agree \(consent version")).click()
    wait_until_idle(page)
    page.get_by_role("button", name="Submit", exact=True).click()
    page.get_by_text("Your deletion code").wait_for()
    # (the synthetic banner has code elements of its own: wait for the one with the code)
    pattern = re.compile(r"TL(-[A-Z0-9]{4}){5}")
    page.locator("code", has_text=pattern).first.wait_for()
    code = pattern.search(" ".join(page.locator("code").all_inner_texts()))
    assert code is not None, "a deletion code is shown"
    full_page_screenshot(page, tmp_path / "submitted.png")

    assert process_inbox(home).published  # what the inbox flow does every few minutes
    open_view(page, dashboard + "/", "How long do USCIS cases take?")
    assert int(cases_metric(page).replace(",", "")) == before + 1

    open_view(page, dashboard + "/delete", "Delete a submission")
    page.get_by_label("Deletion code").fill(code.group(0))
    page.get_by_label("Deletion code").press("Enter")
    page.get_by_role("button", name="Look it up").click()
    page.get_by_text(re.compile(r"processed: 1 case\(s\) taken in")).wait_for()
    page.get_by_text("Yes, delete this submission").click()
    wait_until_idle(page)
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text("deletion requested: it is removed at the next ingest run").wait_for()
    assert_no_exception(page)
    full_page_screenshot(page, tmp_path / "deletion-requested.png")

    process_inbox(home)
    open_view(page, dashboard + "/", "How long do USCIS cases take?")
    assert int(cases_metric(page).replace(",", "")) == before


def test_pages_fit_a_phone_screen(dashboard: str, browser: Any, tmp_path: Path) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    try:
        for path, title in (("/", PAGES["/"]), ("/processing-times?form=I-485", "Processing times")):
            open_view(page, dashboard + path, title)
            assert_no_exception(page)
            overflow = page.evaluate(
                "() => document.querySelector('[data-testid=\"stMain\"]').scrollWidth")
            assert overflow <= PHONE["width"] + 1, f"{path} scrolls sideways on a phone"
            full_page_screenshot(page, tmp_path / f"phone-{path.strip('/').split('?')[0] or 'overview'}.png")
    finally:
        context.close()
