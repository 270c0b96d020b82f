"""Publishing read-only snapshots for the dashboard and the CLI.

DuckDB's file lock means a reader must never open the database the flows write. After each
flow, the tables readers need are written as Parquet into a new folder under published/,
and the CURRENT pointer is swapped to it with an atomic rename. A reader that holds an older
snapshot keeps reading it undisturbed; the last few snapshots are kept for that reason.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

KEEP_SNAPSHOTS = 3
POINTER = "CURRENT"

# name -> query; nothing here holds a case id or a receipt number.
PUBLISHED_TABLES: dict[str, str] = {
    "case_stats": "SELECT * FROM case_stats ORDER BY form_type, office",
    "durations": (
        "SELECT form_type, intake_office, current_office, received_month, decision_month,"
        " outcome, duration_days, decided, had_rfe, had_interview, transferred, premium, synthetic"
        " FROM case_durations"
    ),
    "runs": "SELECT * FROM ingest_runs ORDER BY run_id DESC LIMIT 500",
    "quarantine_reasons": (
        "SELECT reason, count(*) AS n_records, max(created_at) AS last_seen"
        " FROM (SELECT unnest(reasons) AS reason, created_at FROM quarantine)"
        " GROUP BY reason ORDER BY n_records DESC"
    ),
}


def publish_snapshot(con: duckdb.DuckDBPyConnection, published_dir: Path, min_group_size: int) -> Path:
    """Write a new snapshot and point CURRENT at it; return its folder."""
    published_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
    staging = published_dir / f".staging-{stamp}-{os.getpid()}"
    staging.mkdir()
    try:
        for name, query in PUBLISHED_TABLES.items():
            target = staging / f"{name}.parquet"
            con.execute(f"COPY ({query}) TO '{target}' (FORMAT parquet)")
        meta = _meta(con, stamp, min_group_size)
        (staging / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        final = published_dir / stamp
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer_tmp = published_dir / f".{POINTER}.{os.getpid()}"
    pointer_tmp.write_text(stamp)
    os.replace(pointer_tmp, published_dir / POINTER)
    _prune(published_dir, keep=stamp)
    return final


def _meta(con: duckdb.DuckDBPyConnection, stamp: str, min_group_size: int) -> dict[str, object]:
    row = con.execute(
        "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM status_events),"
        " (SELECT count(*) FILTER (WHERE synthetic) FROM cases),"
        " (SELECT max(computed_at) FROM case_stats),"
        " (SELECT max(finished_at) FROM ingest_runs WHERE status = 'ok' AND flow <> 'refresh'),"
        " (SELECT count(*) FROM quarantine),"
        " (SELECT max(version) FROM schema_migrations),"
        " (SELECT max(last_seen) FROM cases)"
    ).fetchone()
    assert row is not None
    return {
        "snapshot": stamp,
        "published_at": datetime.now().isoformat(timespec="seconds"),
        "n_cases": row[0],
        "n_events": row[1],
        "n_synthetic_cases": row[2],
        "stats_computed_at": row[3],
        "last_ingest_at": row[4],
        "n_quarantined": row[5],
        "schema_version": row[6],
        "data_seen_until": row[7],
        "min_group_size": min_group_size,
    }


def _prune(published_dir: Path, keep: str) -> None:
    snapshots = sorted(p for p in published_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in snapshots[:-KEEP_SNAPSHOTS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)
