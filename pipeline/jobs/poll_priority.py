"""Which due receipts to poll first when the day's quota cannot cover them all.

The chance that a case's status changed since we last looked comes from the histories already
stored: for every (form, intake office, stage) the rate at which cases leave that stage,
piecewise by how long they have been in it (0-30, 30-90, 90-180, 180-365, 365+ days): the
number of stage changes divided by the days cases spent at risk (a spell still open at the
case's last observation counts its days, censored). A thin cell is shrunk towards the coarser
one, (form, office, stage) -> (form, stage) -> (stage) -> all, as if it held PRIOR_DAYS more
days at the coarser rate, so a terminal stage with many quiet days tends to 0 and a cell with
little data keeps its parent's rate. A receipt never polled (stage unknown) ranks first; no
receipt waits more than `PollSchedule.max_wait` past its due time (the registry enforces it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import polars as pl

from pipeline.receipts import intake_office
from pipeline.sources.uscis.registry import TrackedReceipt
from pipeline.store.db import query_frame

BUCKETS: tuple[int, ...] = (0, 30, 90, 180, 365)
# A cell's rate counts as if it had this many more days at risk at its parent's rate.
PRIOR_DAYS = 300.0
# Used while nothing is stored yet: about one change a month.
PRIOR_DAILY_RATE = 1 / 30

Key = tuple[str | None, str | None, str | None]

_SPELLS = """
SELECT c.form_type, c.intake_office AS office, e.stage,
       date_diff('day', e.event_date,
                 coalesce(lead(e.event_date) OVER w, c.last_seen::DATE)) AS days,
       lead(e.event_date) OVER w IS NOT NULL AS changed
FROM status_events e JOIN cases c USING (case_id)
WINDOW w AS (PARTITION BY e.case_id ORDER BY e.event_date, e.stage)
"""


@dataclass(frozen=True)
class ChangeModel:
    """Daily rates of leaving a stage, by (form, office, stage) and days in the stage."""

    rates: dict[Key, tuple[float, ...]] = field(default_factory=dict)

    def daily_rate(self, form: str | None, office: str | None, stage: str | None, waited: int) -> float:
        """Return the estimated daily chance of a change after `waited` days in the stage."""
        bucket = max(i for i, start in enumerate(BUCKETS) if waited >= start) if waited >= 0 else 0
        for key in ((form, office, stage), (form, None, stage), (None, None, stage),
                    (None, None, None)):
            found = self.rates.get(key)
            if found is not None:
                return found[bucket]
        return PRIOR_DAILY_RATE

    def chance_changed(self, entry: TrackedReceipt, now: datetime) -> float:
        """Return the chance that the receipt's status changed since it was last polled."""
        if entry.stage is None or entry.stage_since is None or entry.last_polled_at is None:
            return 1.0
        office = _office(entry.receipt)
        start = (entry.last_polled_at.date() - entry.stage_since).days
        end = (now.date() - entry.stage_since).days
        hazard = sum(
            self.daily_rate(entry.form_type, office, entry.stage, day)
            for day in range(max(0, start), max(0, end) + (1 if end == start else 0))
        )
        return 1.0 - math.exp(-hazard)


def _office(receipt: str) -> str | None:
    try:
        return intake_office(receipt)
    except ValueError:
        return None


def estimate_change_model(spells: pl.DataFrame) -> ChangeModel:
    """Estimate the rates from stage spells (form_type, office, stage, days, changed)."""
    if spells.is_empty():
        return ChangeModel()
    spells = spells.with_columns(pl.col("days").clip(lower_bound=0).cast(pl.Int64))
    ends = [*BUCKETS[1:], None]
    columns = []
    for i, (start, end) in enumerate(zip(BUCKETS, ends, strict=True)):
        upper = pl.col("days") if end is None else pl.min_horizontal(pl.col("days"), pl.lit(end))
        exposure = (upper - start).clip(lower_bound=0)
        in_bucket = pl.col("days") >= start
        if end is not None:
            in_bucket = in_bucket & (pl.col("days") < end)
        columns += [exposure.alias(f"x{i}"), (in_bucket & pl.col("changed")).cast(pl.Int64).alias(f"n{i}")]
    parts = spells.with_columns(columns)
    sums = [pl.col(f"{p}{i}").sum() for i in range(len(BUCKETS)) for p in ("x", "n")]
    rates: dict[Key, tuple[float, ...]] = {}
    levels: list[list[str]] = [[], ["stage"], ["form_type", "stage"], ["form_type", "office", "stage"]]
    for depth, keys in enumerate(levels):
        grouped = parts.group_by(keys).agg(sums) if keys else parts.select(sums)
        for row in grouped.iter_rows(named=True):
            key: Key = (
                row.get("form_type") if "form_type" in keys else None,
                row.get("office") if "office" in keys else None,
                row.get("stage") if "stage" in keys else None,
            )
            parent = _parent(rates, key, depth)
            rates[key] = tuple(
                (row[f"n{i}"] + PRIOR_DAYS * parent[i]) / (row[f"x{i}"] + PRIOR_DAYS)
                for i in range(len(BUCKETS))
            )
    return ChangeModel(rates)


def _parent(rates: dict[Key, tuple[float, ...]], key: Key, depth: int) -> tuple[float, ...]:
    form, _, stage = key
    parent_key: Key = [(None, None, None), (None, None, None), (None, None, stage),
                       (form, None, stage)][depth]
    return rates.get(parent_key, (PRIOR_DAILY_RATE,) * len(BUCKETS)) if depth else (
        (PRIOR_DAILY_RATE,) * len(BUCKETS))


def load_change_model(con: duckdb.DuckDBPyConnection) -> ChangeModel:
    """Estimate the rates from the histories stored in the analytics database."""
    return estimate_change_model(query_frame(con, _SPELLS))
