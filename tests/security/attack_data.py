"""What the security tests attack: small stores with a group an attacker wants to uncover."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pipeline.settings import Settings
from tests.support.analytics_data import Case, store_cases
from tests.support.cli import timelines

K = 10


def office_cases(prefix: str, office: str, n: int, n_approved: int, first_day: int = 200,
                 form: str = "I-485", received: date = date(2025, 1, 1)) -> list[Case]:
    """n cases at an office: the first n_approved approved after first_day, +3 days each."""
    return [Case(f"{prefix}{i}", form=form, office=office, received=received, seen_days=500,
                 events=[(first_day + 3 * i, "approved")] if i < n_approved else [])
            for i in range(n)]


def victim_store(settings: Settings) -> None:
    """I-485 at NSC (40) and VSC (30), and a small TSC group: 5 cases, 3 approved, 2 pending."""
    store_cases(settings, [*office_cases("n", "NSC", 40, 30), *office_cases("v", "VSC", 30, 25),
                           *office_cases("t", "TSC", 5, 3, first_day=100)])


def cli_json(home: Path, *args: str, **env: str) -> Any:
    """Run a `timelines` command with --format json and return its answer."""
    done = timelines(*args, "--format", "json", home=home, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refresh(home: Path, **env: str) -> None:
    """`timelines refresh` (recompute and publish), as an operator runs it."""
    done = timelines("refresh", home=home, **env)
    assert done.returncode == 0, done.stderr


def residuals(total: dict[str, Any], parts: list[dict[str, Any]], columns: tuple[str, ...]
              ) -> dict[str, int]:
    """Total minus its published parts, per count column (what a subtraction reveals)."""
    shown = [p for p in parts if not p["suppressed"]]
    return {c: int(total[c]) - sum(int(p[c]) for p in shown) for c in columns}


def outcome_count(row: dict[str, Any], rate: str, base: str) -> int:
    """The count a published rate implies (approvals = approval_rate x decided)."""
    value = row.get(rate)
    return round(float(value) * int(row[base])) if value not in (None, "") else 0


def timeline_csv(rows: list[dict[str, str]]) -> str:
    """A community CSV (the template's columns)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["form_type", "office", "received_date",
                                             "approved_date", "denied_date", "receipt_number"])
    writer.writeheader()
    for row in rows:
        writer.writerow({"receipt_number": "", **row})
    return out.getvalue()


def fake_rows(n: int, days: int, office: str = "TSC", received: date = date(2025, 1, 1),
              distinct: bool = True) -> list[dict[str, str]]:
    """n made-up I-485 timelines decided after `days` (each a day apart when distinct)."""
    return [{"form_type": "I-485", "office": office,
             "received_date": (received + timedelta(days=i if distinct else 0)).isoformat(),
             "approved_date": (received + timedelta(days=(i if distinct else 0) + days)).isoformat()}
            for i in range(n)]
