"""AppTest of every dashboard page against a real published snapshot of a synthetic sample."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from pipeline.analytics.official import import_official, read_official
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.poll import run_poll
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.sources.uscis.client import ApiSettings, Secret
from pipeline.sources.uscis.emulator import EmulatorConfig, EmulatorServer, load_sandbox_receipts
from pipeline.sources.uscis.registry import Registry, registry_path
from pipeline.store.db import open_store
from tests.support.dashboard import APP, publish_sample

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
UNKNOWN_RECEIPT = "EAC2290000001"  # well formed, not one of the sandbox's staging receipts
DATA_PAGES = ("overview", "processing_times", "trends", "official", "health", "download")


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 synthetic cases, a poll of the sandbox emulator (12 more synthetic cases), one
    real-looking case, and USCIS's official times."""
    home = tmp_path_factory.mktemp("dashboard") / "home"
    settings = publish_sample(home)
    with open_store(settings.database_path) as con:
        import_official(con, read_official(PAYLOADS / "processing_times_api_legacy.json"))
    with Registry(registry_path(home)) as registry:
        registry.add([*sorted(load_sandbox_receipts())[:12], UNKNOWN_RECEIPT], now=datetime.now())
    with EmulatorServer(EmulatorConfig(requests_per_second=50)) as server:
        api = ApiSettings(Secret("id"), Secret("secret"), base_url=server.base_url,
                          requests_per_second=50)
        run_poll(settings, api, publish=None)
    real = home.parent / "real"
    real.mkdir()
    answer = json.loads((PAYLOADS / "torch_case_status_success_with_history.json").read_text())
    (real / "answer.json").write_text(json.dumps(answer["body"]))
    ingest_job.ingest(settings, [real])
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    return home


@pytest.fixture
def published(sample_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the dashboard at the published sample."""
    monkeypatch.setenv("TIMELINES_HOME", str(sample_home))
    return sample_home


def open_page(page: str, query: dict[str, str] | None = None) -> AppTest:
    """Run the app, go to a page (with URL query parameters) and fail on any exception."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    """Everything the page says in markdown, captions, alerts and titles."""
    parts = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success,
             *at.title, *at.header, *at.subheader]
    return "\n".join(str(p.value) for p in parts)


def charts(at: AppTest) -> list[dict[str, object]]:
    """The Vega-Lite specs of the page's Altair charts."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def stats_row(home: Path, form: str, office: str) -> dict[str, object]:
    """The published case_stats row `timelines stats` shows for a form and office."""
    stats = current_snapshot(Settings(home).published_dir).table("case_stats")
    return stats.filter((pl.col("form_type") == form) & (pl.col("office") == office)).row(0, named=True)


@pytest.mark.parametrize("page", DATA_PAGES)
def test_a_page_without_published_statistics_says_which_command_to_run(page: str) -> None:
    at = open_page(page)
    assert "No statistics have been published" in texts(at)
    assert any("timelines demo" in c.value for c in at.code)


def test_the_frame_shows_navigation_and_freshness(published: Path) -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    n_cases = current_snapshot(Settings(published).published_dir).meta["n_cases"]
    assert "Figures published just now" in sidebar and f"{n_cases:,} cases" in sidebar
    assert [t.value for t in at.title] == ["How long do USCIS cases take?"]


@pytest.mark.parametrize("page", [*DATA_PAGES, "my_case", "methodology"])
def test_every_page_labels_synthetic_data(published: Path, page: str) -> None:
    at = open_page(page)
    banner = [w.value for w in at.warning if "Synthetic sample data" in w.value]
    assert banner and "612 of 613 cases" in banner[0]


def test_overview_counts_cases_and_shows_typical_waits(published: Path) -> None:
    at = open_page("overview")
    metrics = {m.label: m.value for m in at.metric}
    durations = current_snapshot(Settings(published).published_dir).table("durations")
    assert metrics["Cases"] == f"{durations.height:,}"
    assert metrics["Decided"] == f"{int(durations['decided'].sum()):,}"
    waits = at.dataframe[0].value
    assert set(waits["form"]) == set(durations["form_type"].unique())
    assert charts(at), "the typical-waits chart is drawn"
    assert "What is new" in texts(at)


def test_processing_times_show_the_published_figures_for_a_filtered_office(published: Path) -> None:
    # an office that is published (complementary suppression hides some beside small ones)
    stats = current_snapshot(Settings(published).published_dir).table("case_stats")
    form, office = stats.filter(~pl.col("suppressed")).sort("n_cases", descending=True).row(0)[:2]
    expected = stats_row(published, form, office)
    at = open_page("processing_times", {"form": form, "office": office})
    assert at.selectbox(key="filter_form").value == form
    assert at.selectbox(key="filter_office").value == office
    table = at.dataframe[0].value
    assert list(table["office"]) == [office]
    assert table["cases"][0] == f"{expected['n_cases']:,}"
    assert table["median days (95% CI)"][0].startswith(f"{expected['median_days']:,.0f} (")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Half decided by"] == f"{expected['median_days']:,.0f} days"
    kinds = [spec.get("layer", [{}])[0].get("mark", {}) for spec in charts(at)]
    assert len(kinds) == 3, "a survival chart, a histogram and the offices' medians"


def test_processing_times_office_rows_and_all_offices_row(published: Path) -> None:
    at = open_page("processing_times", {"form": "I-765"})
    table = at.dataframe[0].value
    assert table["office"][0] == "All offices"
    stats = current_snapshot(Settings(published).published_dir).table("case_stats")
    offices = stats.filter(pl.col("form_type") == "I-765")["office"].unique().to_list()
    assert sorted(table["office"][1:]) == sorted(offices)


def test_changing_a_filter_recomputes_the_view(published: Path) -> None:
    at = open_page("processing_times", {"form": "I-485"})
    before = at.dataframe[0].value["cases"][0]
    at.selectbox(key="filter_office").set_value("NSC").run()
    after = at.dataframe[0].value
    assert list(after["office"]) == ["NSC"]
    assert after["cases"][0] != before


def test_a_group_under_k_shows_too_few_cases_and_no_figure(published: Path) -> None:
    durations = current_snapshot(Settings(published).published_dir).table("durations")
    small = (
        durations.with_columns(pl.col("received_month").dt.year().alias("year"))
        .group_by("form_type", "intake_office", "year").agg(pl.len().alias("n"))
        .filter(pl.col("n").is_between(1, 9)).sort("n").row(0, named=True)
    )
    at = open_page("processing_times", {"form": small["form_type"],
                                        "office": small["intake_office"],
                                        "cohort": str(small["year"])})
    assert "Too few cases to publish" in texts(at)
    assert not at.metric and not at.dataframe and not charts(at)


def test_trends_by_quarter_draw_cohort_and_decision_series(published: Path) -> None:
    at = open_page("trends", {"form": "I-765", "period": "quarter"})
    specs = [json.dumps(spec) for spec in charts(at)]
    assert sum('"received_month"' in spec for spec in specs) == 2, "median and share waiting"
    assert any('"n_decisions"' in spec for spec in specs)
    assert "By quarter filed" in texts(at) and "By quarter decided" in texts(at)
    assert "Updates without a status change" in texts(at)


def test_trends_by_month_of_a_thin_form_say_too_few_instead_of_drawing(published: Path) -> None:
    at = open_page("trends", {"form": "I-539"})
    assert "Too few cases to publish" in texts(at)
    assert not charts(at)


def test_official_page_compares_uscis_with_community_figures(published: Path) -> None:
    at = open_page("official")
    table = at.dataframe[0].value
    assert "USCIS 80% (days)" in table.columns
    assert table["USCIS 80% (days)"].str.len().min() > 0
    assert "Methods differ" in texts(at) or "different questions" in texts(at)


def test_health_page_shows_last_runs_poll_outcomes_and_quota(published: Path) -> None:
    at = open_page("health")
    labels = {m.label: m.value for m in at.metric}
    assert labels["ingest"] == "ok" and labels["refresh"] == "ok" and labels["poll"] == "ok"
    ok = next(value for label, value in labels.items() if label.startswith("OK on"))
    assert ok == "12" and labels["Not found"] == "1"
    # 13 case-status requests and a token request (plus any retry after a spike arrest), all to
    # the emulator: no real quota used
    traffic = current_snapshot(Settings(published).published_dir).table("api_traffic")
    sent = int(traffic["n_requests"].sum())
    assert sent >= 14
    assert f"0 requests of 10,000 (0%), plus {sent} to the local emulator" in texts(at)
    assert any(spec["mark"]["type"] == "bar" for spec in charts(at) if "mark" in spec)


def test_health_page_counts_quarantined_records_by_reason(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(tmp_path / "home")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "future.json").write_text(json.dumps({"case_status": {
        "receiptNumber": "EAC2190000001", "formType": "I-485",
        "submittedDate": "01-01-2099 00:00:00", "current_case_status_text_en": "Case Was Received",
        "current_case_status_desc_en": "", "hist_case_status": None}}))
    (inputs / "broken.json").write_text("{not json")
    ingest_job.ingest(settings, [inputs])
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    monkeypatch.setenv("TIMELINES_HOME", str(settings.home))
    at = open_page("health")
    reasons = at.dataframe[-1].value
    assert reasons["records"].sum() >= 2
    assert "2 records in quarantine" in texts(at)


def test_methodology_states_the_publication_threshold(published: Path) -> None:
    at = open_page("methodology")
    assert "at least **10 cases**" in texts(at)
    assert "never stored" in texts(at).lower()


def test_download_offers_the_export_and_each_table(published: Path) -> None:
    at = open_page("download")
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels[0].startswith("Everything, with the data dictionary")
    assert labels.count("CSV") == labels.count("PARQUET") >= 4


def test_processing_times_show_outcome_shares_and_stage_times(published: Path) -> None:
    at = open_page("processing_times", {"form": "I-485"})
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Approved"].endswith("%") and metrics["Request for evidence"].endswith("%")
    stages = at.dataframe[1].value
    assert "Receipt to decision" in set(stages["step"])
    assert "Receipt to biometrics" in set(stages["step"])


def test_the_download_zip_is_the_open_data_export_without_case_rows(published: Path) -> None:
    from dashboards.open_data import export_zip, table_bytes

    snapshot = current_snapshot(Settings(published).published_dir)
    with zipfile.ZipFile(io.BytesIO(export_zip(str(snapshot.path)))) as z:
        names = {Path(n).name for n in z.namelist()}
    assert {"data_dictionary.md", "processing_times.csv", "processing_times.parquet"} <= names
    assert not any("durations" in n for n in names)
    stats = pl.read_csv(io.BytesIO(table_bytes(str(snapshot.path), "group_stats", "csv")))
    suppressed = stats.filter(pl.col("suppressed"))
    assert suppressed.height > 0, "the sample has groups under k"
    assert suppressed["n_cases"].null_count() == suppressed.height
    assert suppressed["median_days"].null_count() == suppressed.height


def test_health_page_says_whether_the_scheduler_is_alive_and_what_is_overdue(
    published: Path,
) -> None:
    from datetime import timedelta

    from pipeline.publish.heartbeat import Deployment, record_scheduled_run, write_heartbeat

    at = open_page("health")
    assert "No scheduler has run here" in texts(at)
    now = datetime.now()
    inbox = Deployment("ingest-inbox/submissions", "inbox", "*/5 * * * *", 300.0)
    refresh = Deployment("refresh-statistics/statistics", "refresh", "15 * * * *", 3600.0)
    write_heartbeat(published, [inbox, refresh], now, started_at=now - timedelta(hours=3))
    record_scheduled_run(published, "inbox", "completed", None, now - timedelta(minutes=2))
    try:
        at = open_page("health")
        assert "The scheduler is running" in texts(at)
        assert any("refresh-statistics/statistics: overdue" in e.value for e in at.error)
        assert "ingest-inbox/submissions: on time" in texts(at)
        write_heartbeat(published, [inbox, refresh], now, started_at=now, stopped=True)
        assert "The scheduler was stopped" in texts(open_page("health"))
    finally:
        import shutil

        shutil.rmtree(published / "scheduler")


def test_regular_and_premium_are_never_pooled_unless_asked(published: Path) -> None:
    durations = current_snapshot(Settings(published).published_dir).table("durations")
    by_form = (durations.group_by("form_type", "processing").agg(pl.len().alias("n"))
               .pivot(on="processing", index="form_type", values="n").fill_null(0))
    assert "premium" in by_form.columns, "the sample has premium cases"
    form, n_premium, n_regular = by_form.sort("premium", descending=True).select(
        "form_type", "premium", "regular").row(0)

    def all_offices_cases(query: dict[str, str]) -> str:
        at = open_page("processing_times", {"form": form, **query})
        assert not at.exception
        if not at.dataframe:  # a group under k: the page says so and shows no figure
            assert "too few" in texts(at).lower()
            return "too few"
        return str(at.dataframe[0].value["cases"][0])

    k = 10
    assert all_offices_cases({}) == f"{n_regular:,}"  # the default is regular processing
    assert all_offices_cases({"processing": "premium"}) == (
        f"{n_premium:,}" if n_premium >= k else "too few")
    assert all_offices_cases({"processing": "any"}) == f"{n_regular + n_premium:,}"
