"""The opt-in registry: consent, masking, the poll schedule, claims, and `timelines track`."""

from __future__ import annotations

import json
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from pipeline.jobs.poll import schedule_from_env
from pipeline.jobs.poll_results import summarize
from pipeline.receipts import InvalidReceiptError
from pipeline.settings import Settings
from pipeline.sources.uscis.fetch import FetchProgress
from pipeline.sources.uscis.registry import (
    CONSENT_VERSION,
    ERROR,
    INVALID,
    OK,
    QUOTA,
    PollRecord,
    PollSchedule,
    Registry,
    mask_receipt,
    registry_path,
)
from tests.support.cli import timelines

T0 = datetime(2025, 3, 3, 6, 0, 0)
SCHEDULE = PollSchedule()


@pytest.fixture
def registry(settings: Settings) -> Registry:
    opened = Registry(registry_path(settings.ensure_home()))
    yield opened  # type: ignore[misc]
    opened.close()


def test_receipts_are_normalized_and_added_once(registry: Registry) -> None:
    assert registry.add(["eac-99991-03403", "EAC9999103404"], now=T0) == [
        "EAC9999103403",
        "EAC9999103404",
    ]
    assert registry.add(["EAC9999103403"], now=T0 + timedelta(days=1)) == []
    entries = registry.tracked()
    assert [e.receipt for e in entries] == ["EAC9999103403", "EAC9999103404"]
    assert entries[0].consent_version == CONSENT_VERSION and entries[0].consent_at == T0
    assert entries[0].next_due == T0 and entries[0].last_polled_at is None


def test_a_malformed_receipt_adds_nothing(registry: Registry) -> None:
    with pytest.raises(InvalidReceiptError, match="not a USCIS receipt number"):
        registry.add(["EAC9999103403", "EAC99"], now=T0)
    with pytest.raises(InvalidReceiptError, match="not a known USCIS office"):
        registry.add(["ZZZ9999103403"], now=T0)
    assert registry.tracked() == []


def test_the_registry_file_is_private_and_named_registry(settings: Settings) -> None:
    path = registry_path(settings.ensure_home())
    with Registry(path) as registry:
        registry.add(["EAC9999103403"], now=T0)
    assert path.name.startswith("registry")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ValueError, match="must start with 'registry'"):
        Registry(settings.home / "receipts.sqlite")


@pytest.mark.parametrize(
    ("receipt", "masked"),
    [("EAC2390000001", "EAC23*****001"), ("IOE0912345678", "IOE09*****678")],
)
def test_masking_hides_most_digits(receipt: str, masked: str) -> None:
    assert mask_receipt(receipt) == masked


@pytest.mark.parametrize(
    ("polled", "outcome", "decided", "expected"),
    [
        (None, None, None, T0),  # never polled: due at once
        (T0, OK, None, T0 + timedelta(hours=23)),  # daily, up to an hour early
        (T0, "not_found", None, T0 + timedelta(hours=23)),
        (T0, ERROR, None, T0),  # failed: the next run tries again
        (T0, QUOTA, None, T0),
        (T0, INVALID, None, None),  # USCIS refused the number: asking again cannot help
        (T0, OK, date(2025, 3, 1), T0 + timedelta(days=7, hours=-1)),  # decided: weekly
        (T0, OK, date(2025, 1, 5), None),  # decided, grace (60 days) over before the next poll
        (T0, OK, date(2020, 1, 1), None),
    ],
)
def test_schedule(
    polled: datetime | None, outcome: str | None, decided: date | None, expected: datetime | None
) -> None:
    due = SCHEDULE.next_due(
        added_at=T0, last_polled_at=polled, last_outcome=outcome, decided_at=decided
    )
    assert due == expected


def test_schedule_comes_from_the_environment() -> None:
    schedule = schedule_from_env(
        {
            "TIMELINES_POLL_INTERVAL_HOURS": "12",
            "TIMELINES_POLL_DECIDED_INTERVAL_HOURS": "48",
            "TIMELINES_POLL_DECIDED_GRACE_DAYS": "10",
        }
    )
    assert schedule == PollSchedule(timedelta(hours=12), timedelta(hours=48), timedelta(days=10))
    assert schedule_from_env({}) == PollSchedule()
    with pytest.raises(ValueError, match="TIMELINES_POLL_INTERVAL_HOURS"):
        schedule_from_env({"TIMELINES_POLL_INTERVAL_HOURS": "daily"})


def _polled(registry: Registry, receipt: str, at: datetime, outcome: str = OK) -> None:
    registry.record_polls([PollRecord(receipt, at, outcome)], SCHEDULE)


def test_claims_take_due_receipts_most_overdue_first(registry: Registry) -> None:
    registry.add(["EAC9999103403"], now=T0)
    registry.add(["EAC9999103404", "EAC9999103405"], now=T0 + timedelta(hours=1))
    _polled(registry, "EAC9999103405", T0 + timedelta(hours=2))
    later = T0 + timedelta(hours=3)
    claim = registry.claim_due(now=later, schedule=SCHEDULE)
    assert claim.receipts == ["EAC9999103403", "EAC9999103404"] and claim.n_tracked == 3
    registry.release(claim.claim_id)
    assert registry.claim_due(now=later, schedule=SCHEDULE, limit=1).receipts == ["EAC9999103403"]


def test_force_claims_every_unclaimed_receipt(registry: Registry) -> None:
    registry.add(["EAC9999103403", "EAC9999103404"], now=T0)
    _polled(registry, "EAC9999103403", T0, INVALID)
    _polled(registry, "EAC9999103404", T0)
    assert registry.claim_due(now=T0, schedule=SCHEDULE).receipts == []
    forced = registry.claim_due(now=T0, schedule=SCHEDULE, force=True)
    assert sorted(forced.receipts) == ["EAC9999103403", "EAC9999103404"]


def test_a_claimed_receipt_is_not_claimed_twice_until_released_or_expired(
    registry: Registry, settings: Settings
) -> None:
    registry.add(["EAC9999103403", "EAC9999103404"], now=T0)
    with Registry(registry_path(settings.home)) as other_process:
        first = registry.claim_due(now=T0, schedule=SCHEDULE, limit=1, lease=timedelta(minutes=5))
        second = other_process.claim_due(now=T0, schedule=SCHEDULE, lease=timedelta(minutes=10))
        assert first.receipts == ["EAC9999103403"] and second.receipts == ["EAC9999103404"]
        nothing = other_process.claim_due(now=T0, schedule=SCHEDULE)
        assert (nothing.receipts, nothing.n_due, nothing.n_held) == ([], 0, 2)
        said = summarize("the Case Status API", "emulator", nothing, FetchProgress(), None).describe()
        assert said == ("nothing is due for this run: 2 of the 2 tracked receipts are being "
                        "polled by another run right now")
        expired = T0 + timedelta(minutes=6)
        assert other_process.claim_due(now=expired, schedule=SCHEDULE).receipts == [
            "EAC9999103403"
        ]


def test_recorded_polls_release_the_receipt_and_set_the_next_poll(registry: Registry) -> None:
    registry.add(["EAC9999103403"], now=T0)
    claim = registry.claim_due(now=T0, schedule=SCHEDULE)
    registry.record_polls(
        [PollRecord("EAC9999103403", T0, OK, None, date(2025, 3, 1))], SCHEDULE
    )
    registry.record_polls([PollRecord("EAC9999109999", T0, OK)], SCHEDULE)  # not tracked
    (entry,) = registry.tracked()
    assert (entry.last_outcome, entry.decided_at) == (OK, date(2025, 3, 1))
    assert entry.next_due == T0 + timedelta(days=7, hours=-1)
    registry.release(claim.claim_id)
    week = T0 + timedelta(days=7)
    assert registry.claim_due(now=week, schedule=SCHEDULE).receipts == ["EAC9999103403"]


def test_remove(registry: Registry) -> None:
    registry.add(["EAC9999103403"], now=T0)
    assert registry.remove("eac9999103403") is True
    assert registry.remove("EAC9999103403") is False
    assert registry.tracked() == []


@pytest.mark.slow
def test_track_commands_as_a_user_runs_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    refused = timelines("track", "add", "EAC9999103403", home=home)
    assert refused.returncode == 2 and "--consent" in refused.stderr
    assert "I agree" in refused.stdout
    malformed = timelines("track", "add", "EAC9999103403", "EAC-12", "--consent", home=home)
    assert malformed.returncode == 2 and "'EAC-12' is not a USCIS receipt number" in malformed.stderr
    assert "Traceback" not in malformed.stderr

    added = timelines("track", "add", "EAC9999103403", "lin9999106498", "--consent", home=home)
    assert added.returncode == 0, added.stderr
    assert "now tracking 2 more receipts" in added.stdout
    assert "EAC9999103403" not in added.stdout and "EAC99*****403" in added.stdout

    listed = timelines("track", "list", home=home)
    assert listed.returncode == 0 and "EAC99*****403" in listed.stdout
    assert "EAC9999103403" not in listed.stdout and "at the next run" in listed.stdout
    shown = json.loads(timelines("track", "list", "--show", "--format", "json", home=home).stdout)
    assert {row["receipt"] for row in shown} == {"EAC9999103403", "LIN9999106498"}

    removed = timelines("track", "remove", "EAC9999103403", home=home)
    assert removed.returncode == 0 and "removed from the registry" in removed.stdout
    left = json.loads(timelines("track", "list", "--format", "json", home=home).stdout)
    assert [row["receipt"] for row in left] == ["LIN99*****498"]
