"""Publishing read-only snapshots for the dashboard and the CLI.

DuckDB's file lock means a reader must never open the database the flows write. After each
flow, the tables readers need are written as Parquet into a new folder under published/,
and the CURRENT pointer is swapped to it with an atomic rename. A reader that holds an older
snapshot keeps reading it undisturbed; the last few snapshots are kept for that reason.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from datetime import datetime
from pathlib import Path

import duckdb

from pipeline.store.db import first_row

KEEP_SNAPSHOTS = 3
POINTER = "CURRENT"

# Tables whose rows carry a `suppressed` flag, with the columns a suppressed row keeps: every
# other column (counts included) is published empty, so a group under k shows only that it is
# too small.
SUPPRESSED_TABLES: dict[str, tuple[tuple[str, ...], str]] = {
    "case_stats": (("form_type", "office", "processing"), "form_type, office, processing"),
    "group_stats": (
        ("grouping", "office_basis", "form_type", "office", "cohort", "category", "processing"),
        "grouping, office_basis, form_type, office, cohort, category, processing",
    ),
    "stage_stats": (
        ("segment", "form_type", "office", "processing"), "segment, form_type, office, processing"
    ),
    "outcome_curves": (
        ("form_type", "office", "processing", "day"), "form_type, office, processing, day"
    ),
    # the same over verified (polled) cases only: `timelines stats --verified-only`
    "group_stats_verified": (
        ("grouping", "office_basis", "form_type", "office", "cohort", "category", "processing"),
        "grouping, office_basis, form_type, office, cohort, category, processing",
    ),
    "decision_trends": (
        ("form_type", "office", "processing", "decision_month"),
        "form_type, office, processing, decision_month",
    ),
    "silent_updates": (("office", "week"), "office, week"),
}

METHOD_NOTE = (
    "Methods differ. USCIS: the time within which 80% of the cases it completed over the last"
    " six months were decided (finished cases only). Community p80: Kaplan-Meier 80th percentile"
    " from receipt to decision over all our cases, pending ones counted as still waiting, so it"
    " reflects today's backlog; recent_completed_p80_days is the closest like-for-like figure."
    " Both sides are regular processing."
)
LEGACY_METHOD_NOTE = (
    "A 2018-2022 USCIS range: its lower value is the median (50% of completed cases), its upper"
    " value the time to complete 93% (cycle-time forms: the cycle time and a multiple of it). It"
    " is compared with our Kaplan-Meier median (difference_days), not with our 80th percentile."
    " Both sides are regular processing."
)
ALL_CATEGORIES = "all categories"

# The official figure beside ours per form x office x category (current office: where USCIS
# counts it), regular processing on both sides (USCIS's times exclude premium processing).
# A figure for one category meets the community figure of that category; a figure for all
# categories meets the all-categories one; a category we have no code for meets nothing.
# {k} is the minimum group size; {note} and {legacy_note} the method notes.
OFFICIAL_COMPARISON_SQL = """
WITH latest AS (
    SELECT * FROM official_processing_times
    QUALIFY row_number() OVER (
        PARTITION BY form_type, office, subtype ORDER BY publication_date DESC) = 1
), community AS (
    SELECT * FROM group_stats
    WHERE grouping IN ('office', 'category') AND office_basis = 'current'
      AND processing = 'regular'
), recent_cases AS (
    SELECT form_type, current_office AS office, category, duration_days
    FROM case_durations
    WHERE decided AND processing = 'regular'
      AND decided_on > (SELECT max(seen_until) FROM case_durations) - INTERVAL 6 MONTH
), recent AS (
    SELECT form_type, office, NULL::VARCHAR AS category, count(*) AS n_recent,
           quantile_disc(duration_days, 0.8) AS p80_recent
    FROM recent_cases GROUP BY form_type, office
    UNION ALL
    SELECT form_type, office, category, count(*), quantile_disc(duration_days, 0.8)
    FROM recent_cases WHERE category IS NOT NULL GROUP BY form_type, office, category
)
SELECT o.form_type, o.office, o.office_raw, o.subtype, o.subtype_info, o.category,
       CASE WHEN o.category IS NOT NULL THEN coalesce(o.subtype_info, o.category)
            WHEN o.category_matched THEN '{all}'
            ELSE coalesce(o.subtype_info, o.subtype) END AS official_category,
       CASE WHEN o.category IS NOT NULL THEN o.category
            WHEN o.category_matched THEN '{all}' END AS community_category,
       'regular' AS processing,
       o.publication_date, o.range_method,
       o.official_p80_days, o.official_other_days,
       o.official_median_days, o.official_p93_days, o.service_request_date,
       CASE WHEN c.suppressed THEN NULL ELSE c.n_cases END AS community_n_cases,
       CASE WHEN c.suppressed THEN NULL ELSE c.n_pending END AS community_n_pending,
       CASE WHEN c.suppressed THEN NULL ELSE c.n_stale END AS community_n_stale,
       coalesce(c.suppressed, false) AS community_suppressed,
       c.p80_days AS community_p80_days, c.p80_ci_low AS community_p80_ci_low,
       c.p80_ci_high AS community_p80_ci_high, c.median_days AS community_median_days,
       c.median_ci_low AS community_median_ci_low, c.median_ci_high AS community_median_ci_high,
       CASE WHEN r.n_recent >= {k} THEN r.n_recent END AS recent_completed_n,
       CASE WHEN r.n_recent >= {k} THEN r.p80_recent END AS recent_completed_p80_days,
       CASE WHEN o.range_method = 'p80' THEN 'p80' ELSE 'median' END AS compared_on,
       CASE WHEN o.range_method = 'p80' THEN c.p80_days - o.official_p80_days
            ELSE c.median_days - o.official_median_days END AS difference_days,
       CASE WHEN o.range_method = 'p80' THEN '{note}' ELSE '{legacy_note}' END AS method_note
FROM latest o
LEFT JOIN community c ON c.form_type = o.form_type AND c.office = o.office
     AND ((o.category IS NULL AND o.category_matched AND c.grouping = 'office')
          OR (o.category IS NOT NULL AND c.grouping = 'category' AND c.category = o.category))
LEFT JOIN recent r ON r.form_type = o.form_type AND r.office = o.office
     AND o.category_matched AND r.category IS NOT DISTINCT FROM o.category
ORDER BY o.form_type, o.office, o.subtype
"""

# name -> query; nothing here holds a case id or a receipt number.
PUBLISHED_TABLES: dict[str, str] = {
    "durations": (
        "SELECT form_type, intake_office, current_office, received_month, decision_month,"
        " outcome, duration_days, decided, had_rfe, had_interview, transferred, premium, synthetic,"
        " had_biometrics, had_rfe_response, processing, category, entry_days, stale,"
        " coalesce(provenance = 'verified', false) AS verified,"
        # an opaque number per contributor, new in every snapshot: the dashboard counts k in
        # contributors (one per submission for self-reported cases), never sees who they are
        " dense_rank() OVER (ORDER BY md5(coalesce(contributor, '') || '{salt}'))::INTEGER"
        " AS contributor"
        " FROM case_durations"
    ),
    "official_processing_times": (
        "SELECT * EXCLUDE (imported_at) FROM official_processing_times"
        " ORDER BY form_type, office, subtype, publication_date"
    ),
    "official_comparison": OFFICIAL_COMPARISON_SQL,
    "runs": "SELECT * FROM ingest_runs ORDER BY run_id DESC LIMIT 500",
    "quarantine_reasons": (
        "SELECT reason, count(*) AS n_records, max(created_at) AS last_seen"
        " FROM (SELECT unnest(reasons) AS reason, created_at FROM quarantine)"
        " GROUP BY reason ORDER BY n_records DESC"
    ),
    # Case Status API polling, for the health page: outcomes per day (no case ids) and traffic.
    "poll_outcomes": (
        "SELECT polled_at::DATE AS day, outcome, coalesce(reason, '') AS reason,"
        " count(*) AS n_polls, count(DISTINCT case_id) AS n_cases,"
        " sum(new_events) AS n_new_events, max(polled_at) AS last_polled_at"
        " FROM poll_outcomes GROUP BY ALL ORDER BY day DESC, n_polls DESC, outcome, reason"
    ),
    "api_traffic": "SELECT * FROM api_traffic ORDER BY day, api, endpoint, status",
}


def suppressed_query(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SELECT of a statistics table with every figure and count blanked on suppressed rows."""
    kept, order = SUPPRESSED_TABLES[table]
    columns = [row[0] for row in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?"
        " ORDER BY ordinal_position", [table],
    ).fetchall()]
    always = {*kept, "suppressed", "computed_at"}
    select = ", ".join(
        c if c in always else f"CASE WHEN suppressed THEN NULL ELSE {c} END AS {c}"
        for c in columns
    )
    return f"SELECT {select} FROM {table} ORDER BY {order} NULLS LAST"


def published_queries(con: duckdb.DuckDBPyConnection, min_group_size: int) -> dict[str, str]:
    """Every published table's query, for a minimum group size."""
    queries = {name: suppressed_query(con, name) for name in SUPPRESSED_TABLES}
    salt = secrets.token_hex(16)
    for name, query in PUBLISHED_TABLES.items():
        queries[name] = (
            query.replace("{k}", str(int(min_group_size)))
            .replace("{note}", METHOD_NOTE.replace("'", "''"))
            .replace("{legacy_note}", LEGACY_METHOD_NOTE.replace("'", "''"))
            .replace("{all}", ALL_CATEGORIES)
            .replace("{salt}", salt)
        )
    return queries


def publish_snapshot(con: duckdb.DuckDBPyConnection, published_dir: Path, min_group_size: int) -> Path:
    """Write a new snapshot and point CURRENT at it; return its folder."""
    published_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
    staging = published_dir / f".staging-{stamp}-{os.getpid()}"
    staging.mkdir()
    try:
        for name, query in published_queries(con, min_group_size).items():
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
    row = first_row(con.execute(
        "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM status_events),"
        " (SELECT count(*) FILTER (WHERE synthetic) FROM cases),"
        " (SELECT max(computed_at) FROM case_stats),"
        " (SELECT max(finished_at) FROM ingest_runs WHERE status = 'ok' AND flow <> 'refresh'),"
        " (SELECT count(*) FROM quarantine),"
        " (SELECT max(version) FROM schema_migrations),"
        " (SELECT max(last_seen) FROM cases)"
    ))
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
