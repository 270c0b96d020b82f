"""Attacks by one contributor on the figures: padding a small group, flooding a group.

- Eight made-up rows in one submission lifted a 2-case group over k; its 90th percentile was
  then the real person's duration. Expected: k counts distinct submissions, so the group stays
  suppressed; and by default one submission cannot carry eight cases at all.
- 100 identical rows in one CSV moved a published I-485 median from 332 to 14 days, and
  changing one date added 100 more. Expected: identical timelines count once, a submission
  holds a family's cases at most, and no submission carries more than the documented share
  of a published group, so no published median moves by more than 10%.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings
from tests.security.attack_data import (
    K,
    cli_json,
    fake_rows,
    office_cases,
    refresh,
    timeline_csv,
)
from tests.support.analytics_data import store_cases
from tests.support.cli import timelines


def _submit(home: Path, tmp_path: Path, rows: list[dict[str, str]], name: str, **env: str
            ) -> tuple[int, str]:
    sheet = tmp_path / name
    sheet.write_text(timeline_csv(rows))
    done = timelines("submit", str(sheet), "--consent", home=home, **env)
    return done.returncode, done.stdout + done.stderr


def _group(home: Path, office: str, **env: str) -> dict[str, object]:
    [row] = [r for r in cli_json(home, "stats", "--form", "I-485", **env) if r["office"] == office]
    return row


def test_eight_padding_rows_do_not_publish_a_two_case_group(settings: Settings, tmp_path: Path) -> None:
    store_cases(settings, [*office_cases("n", "NSC", 60, 50), *office_cases("v", "VSC", 60, 50),
                           *office_cases("c", "CSC", 2, 2, first_day=250)])
    refresh(settings.home)
    assert _group(settings.home, "CSC")["suppressed"] is True
    # the public path refuses eight cases in one submission outright
    code, said = _submit(settings.home, tmp_path, fake_rows(8, 40, office="CSC"), "pad.csv")
    assert code == 2 and "at most 6" in said
    # even where an operator allows more per submission, eight rows are one contributor
    code, said = _submit(settings.home, tmp_path, fake_rows(8, 40, office="CSC"), "pad.csv",
                         TIMELINES_SUBMIT_MAX_CASES="20")
    assert code == 0, said
    refresh(settings.home)
    csc = _group(settings.home, "CSC")
    assert csc["suppressed"] is True and csc["p90_days"] is None and csc["n_cases"] is None


def test_a_hundred_identical_rows_move_no_median_by_more_than_ten_percent(
    settings: Settings, tmp_path: Path
) -> None:
    store_cases(settings, [*office_cases("n", "NSC", 40, 36, first_day=290),
                           *office_cases("v", "VSC", 40, 36, first_day=290),
                           *office_cases("t", "TSC", 40, 36, first_day=290)])
    refresh(settings.home)
    before = float(_group(settings.home, "NSC")["median_days"])  # type: ignore[arg-type]
    code, said = _submit(settings.home, tmp_path, fake_rows(100, 14, office="NSC", distinct=False),
                         "flood.csv")
    assert code == 0 and "count once" in said, said
    # "changing one date adds 100 more": the next copy is one more case, not a hundred
    changed = fake_rows(100, 15, office="NSC", distinct=False)
    code, said = _submit(settings.home, tmp_path, changed, "flood2.csv")
    assert code == 0, said
    refresh(settings.home)
    nsc = _group(settings.home, "NSC")
    assert nsc["n_cases"] == 42
    after = float(nsc["median_days"])  # type: ignore[arg-type]
    assert abs(after - before) <= 0.10 * before, (before, after)


def test_no_submission_carries_more_than_its_share_of_a_published_group(
    settings: Settings, tmp_path: Path
) -> None:
    store_cases(settings, [*office_cases("n", "NSC", 40, 36, first_day=290),
                           *office_cases("v", "VSC", 40, 36, first_day=290),
                           *office_cases("t", "TSC", 40, 36, first_day=290)])
    refresh(settings.home)
    before = float(_group(settings.home, "NSC")["median_days"])  # type: ignore[arg-type]
    # an operator who raised the per-submission cap: 60 distinct made-up rows in one file
    code, said = _submit(settings.home, tmp_path, fake_rows(60, 14, office="NSC"), "many.csv",
                         TIMELINES_SUBMIT_MAX_CASES="100")
    assert code == 0, said
    refresh(settings.home)
    nsc = _group(settings.home, "NSC")
    published = nsc["median_days"]
    assert published is None or abs(float(published) - before) <= 0.10 * before  # type: ignore[arg-type]
    assert nsc["suppressed"] is True  # 60 of 100 cases from one submission: over the share
    assert K == 10
