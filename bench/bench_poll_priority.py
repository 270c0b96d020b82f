"""Spending a short daily quota where it tells most: a simulation with a known answer.

A world of receipts (4 forms x 5 intake offices) moves through stages with known waiting-time
laws that differ by form, office, stage and time already waited (some hazards rise with the
wait, some fall). Every simulated day the poller may send `quota` requests, fewer than the
receipts due. Two policies choose which, through the real registry (`Registry.claim_due`):
  * round-robin: the most overdue first (what polling did before);
  * priority: the estimated chance of a status change since the last poll
    (`pipeline.jobs.poll_priority`, rates estimated from a separate, already-observed
    population), with no receipt waiting more than 14 days past due.
Measured: status changes found per 1,000 requests, the longest any receipt waited between
polls, and the median delay between a change and its discovery.

Run alone:  uv run python -m bench.bench_poll_priority [--quick]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from bench import BenchRow, markdown_table

START = datetime(2025, 1, 6, 6)
FORMS = {  # stage path and, per stage, (median days, Weibull shape: <1 falling, >1 rising hazard)
    "I-485": [("received", 20, 1.5), ("biometrics", 45, 1.2), ("review", 200, 0.7),
              ("approved", 10, 2.0), ("card_mailed", None, None)],
    "I-765": [("received", 25, 2.0), ("biometrics", 60, 2.5), ("approved", 7, 3.0),
              ("card_mailed", None, None)],
    "I-130": [("received", 300, 0.6), ("review", 120, 0.8), ("approved", None, None)],
    "N-400": [("received", 30, 1.5), ("biometrics", 90, 1.8), ("interview", 40, 2.5),
              ("approved", None, None)],
}
FRESH_DAYS = 2  # a change found within this many days of happening counts as found in time
OFFICES = {"EAC": 0.8, "WAC": 1.0, "LIN": 1.4, "SRC": 1.8, "MSC": 0.6}  # slowness factors


@dataclass
class Case:
    """One simulated case: its receipt, form and dated stages (the truth)."""

    receipt: str
    form: str
    stages: list[tuple[str, float]]  # (stage, day it began), day 0 = START

    def stage_at(self, day: float) -> tuple[str, float]:
        """Return the stage the case is in on `day` and the day it began."""
        current = self.stages[0]
        for stage in self.stages:
            if stage[1] <= day:
                current = stage
        return current


def _weibull_days(rng: random.Random, median: float, shape: float) -> float:
    scale = median / (0.6931471805599453 ** (1 / shape))
    return rng.weibullvariate(scale, shape)


def make_world(n: int, seed: int, serial_from: int) -> list[Case]:
    """Return `n` cases received over the last year, with their whole future."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        form = rng.choice(sorted(FORMS))
        prefix = rng.choice(sorted(OFFICES))
        day = -rng.uniform(0, 365)
        stages = []
        for stage, median, shape in FORMS[form]:
            stages.append((stage, day))
            if median is None or shape is None:
                break
            day += max(1.0, _weibull_days(rng, median * OFFICES[prefix], shape))
        cases.append(Case(f"{prefix}25{serial_from + i:08d}", form, stages))
    return cases


def training_spells(cases: list[Case]) -> pl.DataFrame:
    """Stage spells of an already-observed population, censored at day 0."""
    from pipeline.receipts import intake_office

    rows = []
    for case in cases:
        for (stage, begun), following in zip(case.stages, [*case.stages[1:], None], strict=True):
            if begun > 0:
                break
            ended = following[1] if following is not None and following[1] <= 0 else None
            rows.append({"form_type": case.form, "office": intake_office(case.receipt),
                         "stage": stage, "days": int((ended if ended is not None else 0) - begun),
                         "changed": ended is not None})
    return pl.DataFrame(rows)


def simulate(cases: list[Case], quota: int, days: int, model: object | None,
             home: Path) -> dict[str, float]:
    """Poll the world for `days` days with `quota` requests a day; what was found."""
    from pipeline.sources.uscis.registry import PollRecord, PollSchedule, Registry, registry_path

    schedule = PollSchedule(decided_interval=timedelta(days=7), decided_grace=timedelta(days=30),
                            max_wait=timedelta(days=14))
    by_receipt = {c.receipt: c for c in cases}
    seen: dict[str, str] = {}
    last_poll: dict[str, float] = {}
    found, fresh, requests, longest, delays = 0, 0, 0, 0.0, []
    path = registry_path(home)
    with Registry(path) as registry:
        registry.add(list(by_receipt), now=START - timedelta(days=1))
        for day in range(days):
            now = START + timedelta(days=day)
            priority = getattr(model, "chance_changed", None)
            claim = registry.claim_due(now=now, schedule=schedule, limit=quota, priority=priority)
            records = []
            for receipt in claim.receipts:
                case = by_receipt[receipt]
                stage, begun = case.stage_at(day)
                requests += 1
                if receipt in seen and seen[receipt] != stage:
                    found += 1
                    delays.append(day - begun)
                    fresh += day - begun <= FRESH_DAYS
                if receipt in last_poll:
                    longest = max(longest, day - last_poll[receipt])
                seen[receipt], last_poll[receipt] = stage, day
                decided = stage in ("approved", "card_mailed")
                records.append(PollRecord(
                    receipt, now, "ok", None,
                    (START + timedelta(days=begun)).date() if decided else None,
                    case.form, stage, (START + timedelta(days=begun)).date()))
            registry.record_polls(records, schedule)
    return {"per_1000": 1000 * found / max(requests, 1), "found": found, "requests": requests,
            "fresh_per_1000": 1000 * fresh / max(requests, 1),
            "longest": longest, "median_delay": statistics.median(delays) if delays else 0.0}


def rows(quick: bool = False) -> list[BenchRow]:
    """Round-robin against priority on the same world and quota."""
    from pipeline.jobs.poll_priority import estimate_change_model

    n, quota, days = (2_000, 200, 30) if quick else (8_000, 800, 60)
    world = make_world(n, seed=13, serial_from=0)
    model = estimate_change_model(training_spells(make_world(n, seed=14, serial_from=n)))
    results = {}
    for name, chosen in (("round-robin", None), ("priority", model)):
        home = Path(tempfile.mkdtemp(prefix=f"bench-priority-{name}-"))
        try:
            results[name] = simulate(world, quota, days, chosen, home)
        finally:
            shutil.rmtree(home, ignore_errors=True)
    rr, pr = results["round-robin"], results["priority"]
    workload = f"{n:,} receipts, quota {quota:,}/day, {days} days (simulated)"
    return [
        BenchRow(
            "Polling: quota by chance of change, status changes found per 1,000 requests",
            workload, f"{pr['per_1000']:.1f}", baseline=f"round-robin: {rr['per_1000']:.1f}",
            ratio=f"{pr['per_1000'] / max(rr['per_1000'], 1e-9):.2f}x",
            notes=(f"{pr['found']:,} vs {rr['found']:,} changes in {pr['requests']:,} "
                   f"requests each; median delay from change to discovery "
                   f"{pr['median_delay']:.0f} vs {rr['median_delay']:.0f} days"),
        ),
        BenchRow(
            f"Polling: quota by chance of change, changes found within {FRESH_DAYS} days "
            "per 1,000 requests",
            workload, f"{pr['fresh_per_1000']:.1f}",
            baseline=f"round-robin: {rr['fresh_per_1000']:.1f}",
            ratio=f"{pr['fresh_per_1000'] / max(rr['fresh_per_1000'], 1e-9):.2f}x",
            notes=(f"longest wait between two polls of a receipt {pr['longest']:.0f} vs "
                   f"{rr['longest']:.0f} days (limit 14 days past due, kept when the quota "
                   "covers every receipt within it)"),
        ),
    ]


def main() -> None:
    """Run alone and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(markdown_table(rows(parser.parse_args().quick)))


if __name__ == "__main__":
    main()


