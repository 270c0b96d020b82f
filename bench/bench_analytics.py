"""Benchmark the analytics: refresh of 1M cases / ~8M events, and dashboard reads vs plain SQL.

Run on demand (never in tests):  uv run python bench/bench_analytics.py [--cases 1000000]

Cases and events are generated straight into a fresh DuckDB file with SQL (no JSON, no
parsing), then the real refresh (every statistics table, one transaction) and publish run on
them. Two dashboard reads are timed against hand-written DuckDB SQL answering the same
question from the same published Parquet files, in the same run, and their answers are
checked to agree. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.analytics.estimate import estimate_case
from pipeline.analytics.stats import refresh_statistics
from pipeline.analytics.survival import summarize
from pipeline.publish.reader import current_snapshot
from pipeline.publish.snapshot import publish_snapshot
from pipeline.publish.stats_view import stats_rows
from pipeline.store.db import open_store

AS_OF = date(2026, 6, 30)
FORMS = {  # form -> (typical days, weight, card)
    "I-485": (330, 16, True), "I-765": (140, 22, True), "I-130": (420, 14, False),
    "I-131": (260, 8, True), "N-400": (190, 12, False), "I-140": (240, 6, False),
    "I-129": (90, 7, False), "I-751": (520, 6, True), "I-90": (230, 5, True),
    "I-539": (280, 4, False),
}
OFFICES = ["NBC", "NSC", "TSC", "VSC", "CSC", "PSC", "ELIS"]

GENERATE_SQL = """
SELECT setseed(0.42);
CREATE TEMP TABLE forms AS SELECT * FROM (VALUES {forms}) f(form, typical, weight, card);
CREATE TEMP TABLE picks AS
SELECT form, typical, card,
       sum(weight) OVER (ORDER BY form) - weight AS lo, sum(weight) OVER (ORDER BY form) AS hi,
       sum(weight) OVER () AS total FROM forms;
CREATE TEMP TABLE plan AS
WITH base AS (
    SELECT i, random() AS u_form, random() AS u_office, random() AS u1, random() AS u2,
           random() AS u_rfe, random() AS u_int, random() AS u_out, random() AS u_trf,
           (1 + floor(random() * 1095))::INTEGER AS age
    FROM range({n}) r(i)
)
SELECT 'case-' || i AS case_id, p.form, p.card,
       list_extract({offices}, 1 + floor(u_office * {n_offices})::INTEGER) AS office,
       DATE '{as_of}' - age AS received,
       greatest(3, p.typical * exp(0.45 * sqrt(-2 * ln(greatest(u1, 1e-12))) * cos(2 * pi() * u2))
                  * CASE WHEN u_out < 0.08 THEN 2.5 ELSE 1 END)::INTEGER AS days,
       u_rfe < 0.2 AS rfe, u_int < 0.3 AS interview, u_trf < 0.07 AS transferred,
       CASE WHEN u_out < 0.07 THEN 'denied' WHEN u_out < 0.085 THEN 'withdrawn'
            ELSE 'approved' END AS outcome
FROM base JOIN picks p ON u_form * p.total >= p.lo AND u_form * p.total < p.hi;
INSERT INTO cases (case_id, form_type, intake_office, current_office, fiscal_year,
                   received_date, premium, sources, first_seen, last_seen, last_modified, synthetic)
SELECT case_id, form, office, CASE WHEN transferred THEN 'NBC' END, NULL, received, false,
       ['case_status_api'], TIMESTAMP '{as_of}', TIMESTAMP '{as_of}', NULL, true
FROM plan;
CREATE TEMP TABLE planned_events AS
SELECT case_id, received AS d, 'received' AS stage FROM plan
UNION ALL SELECT case_id, received + 20, 'biometrics' FROM plan
UNION ALL SELECT case_id, received + 45, 'biometrics' FROM plan
UNION ALL SELECT case_id, received + (days * 0.4)::INTEGER, 'review' FROM plan
UNION ALL SELECT case_id, received + (days * 0.6)::INTEGER, 'review' FROM plan
UNION ALL SELECT case_id, received + (days * 0.1)::INTEGER + 1, 'other' FROM plan
UNION ALL SELECT case_id, received + (days * 0.3)::INTEGER, 'rfe' FROM plan WHERE rfe
UNION ALL SELECT case_id, received + (days * 0.3)::INTEGER + 50, 'rfe_response' FROM plan WHERE rfe
UNION ALL SELECT case_id, received + (days * 0.85)::INTEGER, 'interview' FROM plan WHERE interview
UNION ALL SELECT case_id, received + (days * 0.2)::INTEGER, 'transferred' FROM plan WHERE transferred
UNION ALL SELECT case_id, received + days, outcome FROM plan
UNION ALL SELECT case_id, received + days + 3, 'card_production' FROM plan
    WHERE card AND outcome = 'approved'
UNION ALL SELECT case_id, received + days + 7, 'card_mailed' FROM plan
    WHERE card AND outcome = 'approved';
INSERT INTO status_events (case_id, event_date, stage, title, source, run_id)
SELECT DISTINCT ON (case_id, d, stage) case_id, d, stage, stage, 'case_status_api', NULL
FROM planned_events WHERE d <= DATE '{as_of}';
"""

HAND_KM_SQL = """
WITH counts AS (
    SELECT duration_days::DOUBLE AS t, count(*) AS removed, count(*) FILTER (WHERE decided) AS d
    FROM read_parquet($path) WHERE form_type = $form AND intake_office = $office GROUP BY 1
    UNION ALL SELECT 0, 0, 0
), grouped AS (
    SELECT t, sum(removed) AS removed, sum(d) AS d FROM counts GROUP BY t
), risk AS (
    SELECT t, d, removed, sum(removed) OVER (ORDER BY t DESC) AS n FROM grouped
), curve AS (
    SELECT t, n, d, removed,
           CASE WHEN max((d = n)::INTEGER) OVER (ORDER BY t) = 1 THEN 0.0
                ELSE exp(sum(CASE WHEN d < n THEN ln(1 - d / n) ELSE 0 END) OVER (ORDER BY t))
           END AS s,
           sum(CASE WHEN n > d THEN d / (n * (n - d)) ELSE 0 END) OVER (ORDER BY t) AS gw
    FROM risk
), bands AS (
    SELECT t, s,
           CASE WHEN s <= 0 THEN 0 WHEN s >= 1 THEN 1
                ELSE exp(-exp(ln(-ln(s)) - 1.959963984540054 * sqrt(gw) / ln(s))) END AS lo,
           CASE WHEN s <= 0 THEN 0 WHEN s >= 1 THEN 1
                ELSE exp(-exp(ln(-ln(s)) + 1.959963984540054 * sqrt(gw) / ln(s))) END AS hi
    FROM curve
)
SELECT (SELECT sum(removed) FROM grouped) AS n,
       (SELECT sum(d) FROM grouped) AS n_decided,
       min(t) FILTER (WHERE s <= 0.5 + 1e-10) AS median_days,
       min(t) FILTER (WHERE lo <= 0.5 + 1e-10) AS median_ci_low,
       min(t) FILTER (WHERE hi <= 0.5 + 1e-10) AS median_ci_high,
       min(t) FILTER (WHERE s <= 0.2 + 1e-10) AS p80_days,
       min(t) FILTER (WHERE lo <= 0.2 + 1e-10) AS p80_ci_low,
       min(t) FILTER (WHERE hi <= 0.2 + 1e-10) AS p80_ci_high
FROM bands
"""

HAND_STATS_SQL = """
SELECT * EXCLUDE (grouping, computed_at) FROM read_parquet($path)
WHERE grouping = 'office' AND office_basis = 'intake' AND form_type = $form
  AND processing IN ('regular', 'premium')
ORDER BY office, processing
"""


def generate(con: duckdb.DuckDBPyConnection, n_cases: int) -> tuple[int, int]:
    """Fill cases and status_events with n_cases synthetic cases; return (cases, events)."""
    forms = ", ".join(f"('{f}', {d}, {w}, {str(c).lower()})" for f, (d, w, c) in FORMS.items())
    sql = GENERATE_SQL.format(forms=forms, n=n_cases, offices=OFFICES, n_offices=len(OFFICES),
                              as_of=AS_OF.isoformat())
    for statement in filter(str.strip, sql.split(";")):
        con.execute(statement)
    counts = con.execute(
        "SELECT (SELECT count(*) FROM cases), (SELECT count(*) FROM status_events)"
    ).fetchall()[0]
    return int(counts[0]), int(counts[1])


def clock(action: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time in ms over `repeat` runs after one warm-up, and the last answer."""
    answer = action()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        answer = action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), answer


def main() -> None:
    """Generate, refresh, publish, time the reads; print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--home", type=Path, help="Folder for the database (default: temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch)
        home.mkdir(parents=True, exist_ok=True)
        rows = run(home, args.cases, args.repeat)
    print("| step | ours | hand-written DuckDB SQL | ratio |")
    print("|---|---:|---:|---:|")
    for step, ours, sql in rows:
        ratio = f"{ours / sql:.2f}x" if sql else ""
        sql_text = f"{sql:.1f} ms" if sql else ""
        unit = "s" if ours >= 1000 else "ms"
        value = ours / 1000 if unit == "s" else ours
        print(f"| {step} | {value:.{2 if unit == 's' else 1}f} {unit} | {sql_text} | {ratio} |")


def run(home: Path, n_cases: int, repeat: int) -> list[tuple[str, float, float | None]]:
    """The measurements: (step, our ms, hand-written SQL ms or None)."""
    database = home / "bench.duckdb"
    database.unlink(missing_ok=True)
    results: list[tuple[str, float, float | None]] = []
    with open_store(database) as con:
        start = time.perf_counter()
        n, n_events = generate(con, n_cases)
        results.append((f"generate {n:,} cases / {n_events:,} events",
                        (time.perf_counter() - start) * 1000, None))
        start = time.perf_counter()
        refreshed = refresh_statistics(con, min_group_size=10)
        results.append((f"refresh (all statistics tables, {refreshed.n_group_rows:,} group rows)",
                        (time.perf_counter() - start) * 1000, None))
        start = time.perf_counter()
        publish_snapshot(con, home / "published", min_group_size=10)
        results.append(("publish snapshot", (time.perf_counter() - start) * 1000, None))
    snapshot = current_snapshot(home / "published")
    sql = duckdb.connect()

    form, office = "I-485", "NBC"
    stats_path = str(snapshot.path / "group_stats.parquet")
    ours_ms, ours = clock(lambda: stats_rows(snapshot, form=form), repeat)
    sql_ms, theirs = clock(
        lambda: sql.sql(HAND_STATS_SQL, params={"path": stats_path, "form": form}).pl(), repeat
    )
    assert [r["median_days"] for r in ours] == theirs["median_days"].to_list()
    results.append((f"published stats of one form ({form}, {len(ours)} offices)", ours_ms, sql_ms))

    durations_path = str(snapshot.path / "durations.parquet")

    def km_summary() -> dict[str, Any]:
        cases = snapshot.scan("durations").filter(
            (pl.col("form_type") == form) & (pl.col("intake_office") == office)
        ).select("duration_days", "decided").collect()
        return summarize(cases["duration_days"].to_numpy(), cases["decided"].to_numpy())

    ours_ms, mine = clock(km_summary, repeat)
    params = {"path": durations_path, "form": form, "office": office}
    sql_ms, hand = clock(lambda: sql.sql(HAND_KM_SQL, params=params).fetchall()[0], repeat)
    assert (mine["n"], mine["median_days"], mine["median_ci_low"], mine["median_ci_high"],
            mine["p80_days"]) == (hand[0], hand[2], hand[3], hand[4], hand[5]), (mine, hand)
    results.append((f"Kaplan-Meier summary from durations ({form} at {office}, "
                    f"{mine['n']:,} cases)", ours_ms, sql_ms))

    def my_case() -> object:
        return estimate_case(snapshot.table("durations"), form_type=form, office=office,
                             received=date(2026, 1, 15), stage="rfe", today=AS_OF,
                             min_group_size=10)

    ours_ms, _ = clock(my_case, max(3, repeat // 5))
    results.append(("'My case' estimate (reads all durations)", ours_ms, None))
    sql.close()
    return results


if __name__ == "__main__":
    main()
