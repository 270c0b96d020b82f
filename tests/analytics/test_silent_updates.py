"""Silent updates: the last-modified stamp moved between two polls, the status did not."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import pytest

from pipeline.analytics.silent_updates import record_observations
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from pipeline.store.db import connect, open_store, query_frame
from tests.support.analytics_data import Case, insert_cases


def _observations(rows: list[tuple[str, str, str | None, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(c, datetime.fromisoformat(o), datetime.fromisoformat(m) if m else None, s)
         for c, o, m, s in rows],
        schema=["case_id", "observed_at", "last_modified", "last_stage"], orient="row",
    )


def test_modifications_without_a_new_status_are_counted_per_office_and_week(
    settings: Settings,
) -> None:
    k1 = Settings(home=settings.home, min_group_size=1)
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        insert_cases(con, [
            Case("quiet", office="NSC", received=date(2025, 1, 2), events=[(10, "biometrics")]),
            Case("moved", office="NSC", received=date(2025, 1, 2),
                 events=[(10, "biometrics"), (26, "interview")]),
            Case("other", office="TSC", current_office="NBC", received=date(2025, 1, 2)),
        ])
        added = record_observations(con, _observations([
            ("quiet", "2025-01-20 08:00", "2025-01-12 10:00", "biometrics"),
            ("quiet", "2025-01-21 08:00", "2025-01-20 15:00", "biometrics"),  # silent (Mon 20th)
            ("quiet", "2025-01-22 08:00", "2025-01-21 09:00", "biometrics"),  # silent again
            ("moved", "2025-01-20 08:00", "2025-01-12 10:00", "biometrics"),
            ("moved", "2025-01-28 08:00", "2025-01-28 07:00", "interview"),  # a status change
            ("other", "2025-01-20 08:00", "2025-01-05 10:00", "received"),
            ("other", "2025-01-21 08:00", "2025-01-21 10:00", "received"),  # silent, at NBC
        ]))
        assert added == 7
        again = record_observations(con, _observations([
            ("quiet", "2025-01-20 08:00", "2025-01-12 10:00", "biometrics")]))
        assert again == 0
    refresh_job.refresh(k1)
    con = connect(settings.database_path, read_only=True)
    try:
        table = query_frame(con, "SELECT office, week, n_cases, n_modifications, n_silent_updates"
                                 " FROM silent_updates ORDER BY office, week")
    finally:
        con.close()
    assert table.rows() == [
        ("NBC", date(2025, 1, 20), 1, 1, 1),
        ("NSC", date(2025, 1, 20), 1, 2, 2),
        ("NSC", date(2025, 1, 27), 1, 1, 0),
    ]


def test_observations_need_a_case_and_a_time(settings: Settings) -> None:
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        with pytest.raises(ValueError, match="need columns"):
            record_observations(con, pl.DataFrame({"case_id": ["x"]}))
        with pytest.raises(ValueError, match="case_id and an observed_at"):
            record_observations(con, _observations([("x", "2025-01-01", None, "received")])
                                .with_columns(pl.lit(None).cast(pl.String).alias("case_id")))
