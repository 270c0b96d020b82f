"""The Prefect flows, run for real against a temporary Prefect server and a DuckDB file."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample


@pytest.mark.usefixtures("prefect_harness")
def test_ingest_flow_twice_then_refresh(settings: Settings, tmp_path: Path) -> None:
    from flows.ingest import ingest_flow
    from flows.refresh import refresh_flow

    sample = tmp_path / "sample"
    write_sample(sample, 600, seed=5, as_of=date(2025, 6, 1))
    first = ingest_flow([str(sample)])
    second = ingest_flow([str(sample)])
    assert first.n_new_cases == 600 and first.n_rejected == 0
    assert (second.n_new_cases, second.n_new_events) == (0, 0)

    refreshed = refresh_flow()
    assert refreshed.n_cases == 600
    stats = current_snapshot(settings.published_dir).table("case_stats")
    # Groups under k are published with no counts at all; the database keeps them.
    hidden = stats.filter(stats["suppressed"])
    assert hidden["n_cases"].null_count() == hidden.height
    published = stats.filter(~stats["suppressed"])
    assert published.height > 0
    assert (published["n_decided"] + published["n_pending"] == published["n_cases"]).all()

    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        runs = con.execute("SELECT flow, status FROM ingest_runs ORDER BY run_id").fetchall()
        stored = con.execute("SELECT sum(n_cases) FROM case_stats").fetchall()[0][0]
    finally:
        con.close()
    assert runs == [("ingest", "ok"), ("ingest", "ok"), ("refresh", "ok")]
    assert stored == 600


@pytest.mark.usefixtures("prefect_harness")
def test_demo_flow_runs_the_whole_pipeline(settings: Settings) -> None:
    from flows.demo import demo_flow

    loaded, refreshed = demo_flow(str(settings.home / "sample"), 300, 2)
    assert loaded.n_stored == 300
    assert refreshed.n_groups > 10
    snapshot = current_snapshot(settings.published_dir)
    assert snapshot.is_synthetic
    official = snapshot.table("official_comparison")
    assert official.height > 0, "Official vs community has something to show in the demo"
    assert official["subtype_info"].str.contains("EXAMPLE").all(), "labelled as example figures"


def _published_tables(settings: Settings) -> dict[str, list[tuple[object, ...]]]:
    """Every table of the published snapshot, without the columns that say when it was made
    (and the contributor number, new in every snapshot on purpose)."""
    snapshot = current_snapshot(settings.published_dir)
    stamps = {"computed_at", "published_at", "refreshed_at", "loaded_at", "started_at",
              "finished_at", "run_id", "first_seen_run", "last_seen_run", "contributor"}
    tables = {}
    for path in sorted(snapshot.path.glob("*.parquet")):
        frame = snapshot.table(path.stem)
        keep = [c for c in frame.columns if c not in stamps]
        tables[path.stem] = sorted(frame.select(keep).rows(), key=repr)
    return tables


@pytest.mark.usefixtures("prefect_harness")
def test_the_flows_and_the_in_process_jobs_publish_the_same_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job is written once: the CLI's in-process run and the flow give the same tables."""
    from flows.ingest import ingest_flow
    from flows.refresh import refresh_flow
    from pipeline.jobs import ingest as ingest_job
    from pipeline.jobs import refresh as refresh_job
    from pipeline.settings import load_settings

    sample = tmp_path / "sample"
    write_sample(sample, 500, seed=9, as_of=date(2025, 6, 1))
    monkeypatch.setenv("TIMELINES_PSEUDONYM_KEY", "f" * 64)
    monkeypatch.setenv("TIMELINES_HOME", str(tmp_path / "in-process"))
    in_process = load_settings()
    ingest_job.ingest(in_process, [sample])
    refresh_job.refresh_and_publish(in_process)
    monkeypatch.setenv("TIMELINES_HOME", str(tmp_path / "as-flows"))
    as_flows = load_settings()
    ingest_flow([str(sample)])
    refresh_flow()

    expected = _published_tables(in_process)
    assert "case_stats" in expected and len(expected["case_stats"]) > 10
    assert _published_tables(as_flows) == expected
