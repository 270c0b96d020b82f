"""Small hand-made stores and a shared synthetic sample for the analytics tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample
from pipeline.store.db import open_store

SAMPLE_AS_OF = date(2026, 6, 30)


@dataclass
class Case:
    """A case to store directly: events are (days after receipt, stage)."""

    case_id: str
    form: str = "I-485"
    office: str = "NBC"
    received: date = date(2025, 1, 1)
    seen_days: int = 400  # last seen this many days after receipt
    events: list[tuple[int, str]] = field(default_factory=list)
    current_office: str | None = None
    last_modified: datetime | None = None
    processing: str = "regular"
    category: str | None = None
    tracked_days: int | None = None  # came under observation this many days after receipt


def store_cases(settings: Settings, cases: list[Case]) -> None:
    """Write cases and their events straight into the store (migrated), no parsing involved."""
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        insert_cases(con, cases)


def insert_cases(con: duckdb.DuckDBPyConnection, cases: list[Case]) -> None:
    """Insert cases and their events on an open, migrated connection."""
    case_rows, event_rows = [], []
    for case in cases:
        seen = datetime.combine(case.received + timedelta(days=case.seen_days), datetime.min.time())
        tracked = (None if case.tracked_days is None
                   else case.received + timedelta(days=case.tracked_days))
        case_rows.append((case.case_id, case.form, case.office, case.current_office,
                          case.received, seen, case.last_modified, case.processing,
                          case.category, tracked))
        event_rows += [(case.case_id, case.received + timedelta(days=days), stage)
                       for days, stage in [(0, "received"), *case.events]]
    new_cases = pl.DataFrame(case_rows, orient="row", schema={
        "case_id": pl.String, "form_type": pl.String, "intake_office": pl.String,
        "current_office": pl.String, "received_date": pl.Date, "seen": pl.Datetime("us"),
        "last_modified": pl.Datetime("us"), "processing": pl.String, "category": pl.String,
        "tracked_since": pl.Date})
    new_events = pl.DataFrame(event_rows, orient="row", schema={
        "case_id": pl.String, "event_date": pl.Date, "stage": pl.String})
    con.register("new_cases", new_cases)
    con.register("new_events", new_events)
    try:
        con.execute(
            "INSERT INTO cases (case_id, form_type, intake_office, current_office, fiscal_year,"
            " received_date, premium, sources, first_seen, last_seen, last_modified, synthetic,"
            " processing, category, tracked_since, last_checked)"
            " SELECT case_id, form_type, intake_office, current_office, NULL, received_date,"
            " processing = 'premium', ['myuscis'], seen, seen, last_modified, false,"
            " processing, category, tracked_since, seen::DATE FROM new_cases"
        )
        con.execute("INSERT INTO status_events (case_id, event_date, stage, title, source, run_id)"
                        " SELECT case_id, event_date, stage, stage,"
                    " 'myuscis', NULL FROM new_events")
    finally:
        con.unregister("new_cases")
        con.unregister("new_events")


def build_sample_home(home: Path, n_cases: int = 1500, seed: int = 7) -> Settings:
    """Sample -> ingest -> refresh -> publish into `home`, as a user would run it."""
    settings = Settings(home=home)
    write_sample(home / "sample", n_cases, seed, as_of=SAMPLE_AS_OF)
    ingest_job.ingest(settings, [home / "sample"])
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    return settings
