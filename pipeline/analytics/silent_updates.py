"""Silent updates: USCIS touched a case (its last-modified stamp moved) but its status did not change.

The poller stores what it saw each time it looked at a case with `record_observations`; a
refresh compares each observation with the one before it. Counts per office and week say
where cases are being worked on behind an unchanged status.
"""

from __future__ import annotations

import duckdb
import polars as pl

OBSERVATION_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "case_id": pl.String,
    "observed_at": pl.Datetime("us"),
    "last_modified": pl.Datetime("us"),
    "last_stage": pl.String,
}

# Parameters: k (min group size), computed_at.
SILENT_UPDATES_SQL = """
WITH ordered AS (
    SELECT o.case_id, o.observed_at, o.last_modified, o.last_stage,
           lag(o.last_modified) OVER w AS previous_modified,
           lag(o.last_stage) OVER w AS previous_stage
    FROM case_observations o
    WINDOW w AS (PARTITION BY o.case_id ORDER BY o.observed_at)
), modifications AS (
    SELECT m.*, coalesce(c.current_office, c.intake_office) AS office,
           m.last_stage IS NOT DISTINCT FROM m.previous_stage
           AND NOT EXISTS (
               SELECT 1 FROM status_events e
               WHERE e.case_id = m.case_id
                 AND e.event_date > m.previous_modified::DATE
                 AND e.event_date <= m.last_modified::DATE
           ) AS silent
    FROM ordered m JOIN cases c USING (case_id)
    WHERE m.last_modified > m.previous_modified
)
SELECT office, date_trunc('week', last_modified)::DATE AS week,
       count(DISTINCT case_id)::INTEGER AS n_cases,
       count(*)::INTEGER AS n_modifications,
       count(*) FILTER (WHERE silent)::INTEGER AS n_silent_updates,
       count(DISTINCT case_id) < ? AS suppressed,
       ?::TIMESTAMP AS computed_at
FROM modifications GROUP BY ALL
"""


def record_observations(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> int:
    """Store what a poll saw of each case; seeing the same (case, moment) again adds nothing.

    `frame` has case_id (the pseudonym, never a receipt number), observed_at, last_modified
    (USCIS's stamp, may be null) and last_stage (stage of the newest status). Runs inside the
    caller's transaction if there is one. Returns the number of new observations.
    """
    missing = set(OBSERVATION_COLUMNS) - set(frame.columns)
    if missing:
        raise ValueError(f"observations need columns {sorted(missing)}")
    rows = frame.select(OBSERVATION_COLUMNS.keys()).cast(OBSERVATION_COLUMNS)  # type: ignore[arg-type]
    if rows["case_id"].is_null().any() or rows["observed_at"].is_null().any():
        raise ValueError("every observation needs a case_id and an observed_at")
    rows = rows.unique(["case_id", "observed_at"], keep="last")
    con.register("new_observations", rows)
    try:
        before = _count(con)
        con.execute(
            "INSERT INTO case_observations BY NAME SELECT * FROM new_observations"
            " ON CONFLICT (case_id, observed_at) DO NOTHING"
        )
        return _count(con) - before
    finally:
        con.unregister("new_observations")


def _count(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT count(*) FROM case_observations").fetchall()[0][0])
