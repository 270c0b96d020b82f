"""The refresh job: recompute the statistics tables, record the run, publish a snapshot.

Every job that changes the store ends with `refresh_and_publish` (or `publish` when the
statistics did not change), so the recipe exists once."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.analytics.stats import RefreshResult, refresh_statistics
from pipeline.publish.snapshot import publish_snapshot
from pipeline.settings import Settings
from pipeline.store.db import open_store
from pipeline.store.load import LoadResult, next_run_id, record_failed_run, record_run


def refresh(settings: Settings) -> RefreshResult:
    """Recompute the statistics tables and record the run."""
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        return _refresh(con, settings)


def _refresh(con: duckdb.DuckDBPyConnection, settings: Settings) -> RefreshResult:
    started = datetime.now()
    run_id = next_run_id(con)
    try:
        result = refresh_statistics(
            con, settings.min_group_size, stale_after_days=settings.stale_after_days,
            max_contributor_share=settings.limits.max_contributor_share,
        )
    except Exception as error:
        record_failed_run(con, run_id, "refresh", started, f"{type(error).__name__}: {error}")
        raise
    record_run(con, run_id, "refresh", started, LoadResult(run_id, n_read=result.n_cases),
               message=f"{result.n_groups} groups, {result.n_suppressed} suppressed")
    return result


def record_failure(settings: Settings, flow: str, started_at: datetime, message: str) -> bool:
    """Record a failed run of `flow` for the health page, unless the job already recorded it.

    For failures a job cannot record itself (bad settings, a crash before its first step);
    publishes a snapshot so the dashboard shows it. Returns whether a row was written.
    """
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        [(already,)] = con.execute(
            "SELECT count(*) FROM ingest_runs WHERE flow = ? AND status = 'failed'"
            " AND finished_at >= ?", [flow, started_at],
        ).fetchall()
        if already:
            return False
        record_failed_run(con, next_run_id(con), flow, started_at, message)
        publish_snapshot(con, settings.published_dir, settings.min_group_size)
    return True


def publish(settings: Settings) -> Path:
    """Publish a fresh read-only snapshot for the dashboard and the CLI."""
    with open_store(settings.database_path) as con:
        return publish_snapshot(con, settings.published_dir, settings.min_group_size)


def refresh_and_publish(settings: Settings) -> RefreshResult:
    """Recompute the statistics and publish them: the last step of every job that changes data."""
    settings.ensure_home()
    with open_store(settings.database_path) as con:  # one open: the database is held once
        result = _refresh(con, settings)
        publish_snapshot(con, settings.published_dir, settings.min_group_size)
    return result
