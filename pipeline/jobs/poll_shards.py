"""Splitting one poll between several processes that share the API's rate limit and quota.

Each shard is an ordinary poll run limited to its share of the due receipts: the registry
hands every run a disjoint lease of the most overdue receipts, and the shared limiter (the
SQLite file on one machine, Postgres across machines) keeps the shards' requests together
under the API's pace and daily quota.
"""

from __future__ import annotations

from datetime import datetime

from pipeline.settings import Settings
from pipeline.sources.uscis.registry import PollSchedule, open_registry, registry_path
from pipeline.sources.uscis.shared import registry_url_from_env


def count_due(settings: Settings, schedule: PollSchedule, now: datetime) -> int:
    """How many tracked receipts are due now (without claiming them)."""
    if registry_url_from_env(settings.env) is None and not registry_path(settings.home).exists():
        return 0
    with open_registry(settings.home, settings.env) as registry:
        return sum(
            1 for t in registry.tracked(schedule) if t.next_due is not None and t.next_due <= now
        )


def shard_sizes(n_due: int, shards: int) -> list[int]:
    """Split n_due receipts into at most `shards` nearly equal, non-empty shares."""
    if shards < 1:
        raise ValueError("the number of poll shards must be at least 1")
    base, extra = divmod(n_due, shards)
    return [size for i in range(shards) if (size := base + (1 if i < extra else 0)) > 0]
