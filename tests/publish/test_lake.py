"""The storage path past one machine: `timelines export-lake`, then the statistics' SQL runs
unchanged on the partitioned Parquet."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.analytics.stats import DURATIONS_SQL
from pipeline.jobs import ingest as ingest_job
from pipeline.publish.lake import open_lake
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample
from pipeline.store.db import open_store
from tests.support.cli import timelines


@pytest.mark.slow
def test_durations_computed_from_the_partitioned_lake_equal_the_database(
    settings: Settings, tmp_path: Path
) -> None:
    write_sample(tmp_path / "sample", 400, seed=6, as_of=date(2025, 6, 1))
    ingest_job.ingest(settings, [tmp_path / "sample"])
    lake = tmp_path / "lake"
    exported = timelines("export-lake", str(lake), "--format", "json", home=settings.home)
    assert exported.returncode == 0, exported.stderr
    counts = json.loads(exported.stdout)
    assert lake.stat().st_mode & 0o777 == 0o700
    with open_store(settings.database_path) as con:
        expected = con.execute(f"SELECT * FROM ({DURATIONS_SQL}) ORDER BY case_id").fetchall()
    assert counts["cases"] == 400 and counts["status_events"] > 400
    assert len(list((lake / "cases").glob("form_type=*"))) == 10  # one folder per form type

    con = open_lake(lake)
    try:
        assert con.execute("SELECT count(*) FROM cases").fetchall() == [(400,)]
        assert con.execute(f"SELECT * FROM ({DURATIONS_SQL}) ORDER BY case_id").fetchall() == expected
        columns = [r[0] for r in con.execute("DESCRIBE status_events").fetchall()]
    finally:
        con.close()
    reference = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        assert columns == [r[0] for r in reference.execute("DESCRIBE status_events").fetchall()]
    finally:
        reference.close()
