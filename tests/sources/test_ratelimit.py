"""The request budget holds per second and per day, within a process and across processes."""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.sources.uscis.ratelimit import (
    DailyQuotaExhausted,
    InMemoryRateLimiter,
    RateLimiter,
    RatePolicy,
    SqliteRateLimiter,
)


class FakeClock:
    """A wall clock that only moves when someone sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


MakeLimiter = Callable[[RatePolicy, FakeClock], RateLimiter]


@pytest.fixture(params=["memory", "sqlite"])
def make_limiter(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeLimiter]:
    opened: list[SqliteRateLimiter] = []

    def make(policy: RatePolicy, clock: FakeClock) -> RateLimiter:
        if request.param == "memory":
            return InMemoryRateLimiter(policy, clock=clock, sleep=clock.sleep)
        limiter = SqliteRateLimiter(
            tmp_path / "ratelimit.sqlite", policy, clock=clock, sleep=clock.sleep
        )
        opened.append(limiter)
        return limiter

    yield make
    for limiter in opened:
        limiter.close()


def max_in_any_second(times: list[float]) -> int:
    """Return the most grants in any half-open one-second window (sliding, not bucketed)."""
    times = sorted(times)
    return max(sum(1 for u in times if t <= u < t + 1.0) for t in times)


def test_never_more_than_n_in_any_second(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(utc(2025, 3, 3, 12, 0, 0) + 0.73)
    limiter = make_limiter(RatePolicy(requests_per_second=3, daily_quota=100), clock)
    grants = []
    for _ in range(20):
        limiter.acquire()
        grants.append(clock.now)
        limiter.mark_sent()  # the request went out at once
    assert max_in_any_second(grants) == 3
    assert max(Counter(int(t) for t in grants).values()) <= 3
    assert grants[-1] - grants[0] < 7 * 1.1 + 0.1  # waits only as long as needed
    assert limiter.used_today() == 20


def test_min_interval_spreads_requests(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(utc(2025, 3, 3, 12))
    policy = RatePolicy(requests_per_second=5, daily_quota=100, min_interval_s=0.2)
    limiter = make_limiter(policy, clock)
    grants = []
    for _ in range(6):
        limiter.acquire()
        grants.append(clock.now)
    assert all(b - a >= 0.2 for a, b in itertools.pairwise(grants))


@pytest.mark.parametrize(
    ("zone", "reset", "last_moment", "first_moment"),
    [
        ("America/New_York", "00:00", utc(2025, 1, 15, 4, 59, 59), utc(2025, 1, 15, 5, 0, 0)),
        ("America/New_York", "00:00", utc(2025, 7, 15, 3, 59, 59), utc(2025, 7, 15, 4, 0, 0)),
        ("UTC", "00:00", utc(2025, 1, 15, 23, 59, 59), utc(2025, 1, 16, 0, 0, 0)),
        ("Europe/London", "07:30", utc(2025, 1, 15, 7, 29, 59), utc(2025, 1, 15, 7, 30, 0)),
    ],
)
def test_daily_quota_ends_at_the_configured_reset(
    make_limiter: MakeLimiter, zone: str, reset: str, last_moment: float, first_moment: float
) -> None:
    clock = FakeClock(last_moment - 5)
    policy = RatePolicy(
        requests_per_second=10,
        daily_quota=2,
        reset_time=dtime.fromisoformat(reset),
        reset_zone=zone,
    )
    limiter = make_limiter(policy, clock)
    limiter.acquire()
    limiter.acquire()
    clock.now = last_moment
    with pytest.raises(DailyQuotaExhausted) as raised:
        limiter.acquire()
    assert raised.value.resets_at.timestamp() == first_moment
    assert raised.value.resets_at.tzinfo == ZoneInfo(zone)
    assert (limiter.used_today(), limiter.remaining_today()) == (2, 0)
    clock.now = first_moment
    limiter.acquire()
    assert (limiter.used_today(), limiter.remaining_today()) == (1, 1)


def test_retry_after_pauses_the_next_permit(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(utc(2025, 3, 3, 12))
    limiter = make_limiter(RatePolicy(requests_per_second=10, daily_quota=100), clock)
    limiter.acquire()
    limiter.record_retry_after(2.5)
    limiter.acquire()
    assert clock.now >= utc(2025, 3, 3, 12) + 2.5


def test_server_side_quota_stops_further_permits(make_limiter: MakeLimiter) -> None:
    clock = FakeClock(utc(2025, 3, 3, 12))
    limiter = make_limiter(RatePolicy(requests_per_second=10, daily_quota=100), clock)
    limiter.acquire()
    limiter.record_quota_exhausted()
    with pytest.raises(DailyQuotaExhausted):
        limiter.acquire()
    assert limiter.remaining_today() == 0


def test_sqlite_limiters_on_one_file_share_the_budget(tmp_path: Path) -> None:
    clock = FakeClock(utc(2025, 3, 3, 12))
    policy = RatePolicy(requests_per_second=2, daily_quota=4)
    path = tmp_path / "home" / "ratelimit.sqlite"
    with (
        SqliteRateLimiter(path, policy, clock=clock, sleep=clock.sleep) as first,
        SqliteRateLimiter(path, policy, clock=clock, sleep=clock.sleep) as second,
    ):
        first.acquire()
        first.acquire()
        second.acquire()  # must wait its turn after the two that ``first`` sent
        assert clock.now >= utc(2025, 3, 3, 12) + 2 * policy.interval_s
        first.record_retry_after(3)
        paused_at = clock.now
        second.acquire()
        assert clock.now >= paused_at + 3
        assert second.used_today() == first.used_today() == 4
        with pytest.raises(DailyQuotaExhausted):
            first.acquire()


def test_quota_error_survives_pickling() -> None:
    error = DailyQuotaExhausted(5, 5, datetime(2025, 1, 1, tzinfo=UTC))
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.used, copy.quota, copy.resets_at, str(copy)) == (5, 5, error.resets_at, str(error))


def _grant_times(path: str, count: int, start: multiprocessing.synchronize.Barrier) -> list[float]:
    """Acquire ``count`` permits from the shared file and return when each was granted."""
    policy = RatePolicy(requests_per_second=4, daily_quota=1000)
    with SqliteRateLimiter(Path(path), policy) as limiter:
        start.wait(timeout=30)
        times = []
        for _ in range(count):
            limiter.acquire()
            times.append(time.time())
        return times


def _run_grant_times(
    path: str,
    count: int,
    start: multiprocessing.synchronize.Barrier,
    out: multiprocessing.Queue[list[float]],
) -> None:
    out.put(_grant_times(path, count, start))


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_two_processes_together_keep_the_per_second_limit(tmp_path: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(2)
    out: multiprocessing.Queue[list[float]] = spawn.Queue()
    path = str(tmp_path / "ratelimit.sqlite")
    workers = [spawn.Process(target=_run_grant_times, args=(path, 6, start, out)) for _ in "ab"]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=45) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    merged = sorted(t for times in results for t in times)
    assert len(merged) == 12
    assert max_in_any_second(merged) <= 4
    assert max(Counter(int(t) for t in merged).values()) <= 4
    with SqliteRateLimiter(Path(path), RatePolicy(4, 1000)) as limiter:
        assert limiter.used_today() == 12
