"""The scheduler's heartbeat: alive, stopped or silent; a deployment on time or overdue."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pipeline.publish.heartbeat import (
    Deployment,
    record_scheduled_run,
    scheduler_health,
    write_heartbeat,
)

T0 = datetime(2026, 12, 1, 12, 0)
INBOX = Deployment("ingest-inbox/submissions", "inbox", "*/5 * * * *", 300.0)
POLL = Deployment("poll/tracked-receipts", "poll", "0 6 * * *", 86400.0)


def test_no_scheduler_ever_ran(tmp_path: Path) -> None:
    assert scheduler_health(tmp_path, T0) is None


def test_a_fresh_heartbeat_is_alive_and_a_recent_empty_run_is_on_time(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, [INBOX, POLL], T0, started_at=T0 - timedelta(hours=2))
    record_scheduled_run(tmp_path, "inbox", "completed", T0 - timedelta(minutes=3),
                         T0 - timedelta(minutes=3), "nothing to do")
    health = scheduler_health(tmp_path, T0 + timedelta(seconds=30))
    assert health is not None and health.alive
    inbox, poll = health.deployments
    assert not inbox.overdue and inbox.last_state == "completed"
    assert not poll.overdue, "started two hours ago: the daily poll is not due yet"
    assert inbox.sentence.startswith("ingest-inbox/submissions: on time")


def test_a_deployment_without_a_run_for_longer_than_its_interval_is_overdue(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, [INBOX], T0, started_at=T0 - timedelta(hours=1))
    record_scheduled_run(tmp_path, "inbox", "completed", None, T0 - timedelta(minutes=16))
    (inbox,) = scheduler_health(tmp_path, T0).deployments  # type: ignore[union-attr]
    assert inbox.overdue, "5 minutes + 10 minutes of grace have passed"
    write_heartbeat(tmp_path, [INBOX], T0, started_at=T0 - timedelta(hours=1))
    record_scheduled_run(tmp_path, "inbox", "failed", None, T0 - timedelta(minutes=14))
    (inbox,) = scheduler_health(tmp_path, T0).deployments  # type: ignore[union-attr]
    assert not inbox.overdue and inbox.last_state == "failed"


def test_a_silent_or_stopped_scheduler_is_not_alive(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, [INBOX], T0, started_at=T0)
    silent = scheduler_health(tmp_path, T0 + timedelta(minutes=3))
    assert silent is not None and not silent.alive and silent.stopped_at is None
    write_heartbeat(tmp_path, [INBOX], T0, started_at=T0, stopped=True)
    stopped = scheduler_health(tmp_path, T0 + timedelta(seconds=5))
    assert stopped is not None and not stopped.alive and stopped.stopped_at == T0
