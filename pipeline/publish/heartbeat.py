"""The scheduler's heartbeat and every scheduled run, as small files the health page reads.

`timelines serve` writes `scheduler/heartbeat.json` every HEARTBEAT_SECONDS (and `stopped_at`
when it stops); each scheduled flow run, including one with nothing to do, writes
`scheduler/last-run-<job>.json` when it ends. Files rather than database rows: a run with
nothing to do then never opens the database (which would block the flows that write it), and
the dashboard reads them without opening it either. Writes are atomic (write, then rename).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HEARTBEAT_SECONDS = 30
# the scheduler is taken to be down when its heartbeat is older than this
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)
# a deployment is overdue when no run ended within its interval plus this grace
OVERDUE_GRACE = timedelta(minutes=10)


def scheduler_dir(home: Path) -> Path:
    """The folder of the heartbeat and last-run files."""
    return home / "scheduler"


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(value, default=str))
    temporary.replace(path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


@dataclass(frozen=True)
class Deployment:
    """One served deployment: its name, job, cron and the seconds between two runs."""

    name: str
    job: str
    cron: str | None
    every_seconds: float | None


def write_heartbeat(home: Path, deployments: list[Deployment], now: datetime,
                    started_at: datetime, stopped: bool = False) -> None:
    """Say the scheduler is alive (or has stopped), with what it serves."""
    _write_json(scheduler_dir(home) / "heartbeat.json", {
        "beat_at": now.isoformat(), "started_at": started_at.isoformat(), "pid": os.getpid(),
        "stopped_at": now.isoformat() if stopped else None,
        "deployments": [d.__dict__ for d in deployments],
    })


def record_scheduled_run(home: Path, job: str, state: str, started_at: datetime | None,
                         finished_at: datetime, message: str = "") -> None:
    """Record the end of a scheduled run of a job, even one that had nothing to do."""
    _write_json(scheduler_dir(home) / f"last-run-{job}.json", {
        "job": job, "state": state, "finished_at": finished_at.isoformat(),
        "started_at": None if started_at is None else started_at.isoformat(), "message": message,
    })


@dataclass(frozen=True)
class DeploymentHealth:
    """How one deployment is doing: its last run and whether one is overdue."""

    deployment: Deployment
    last_state: str | None
    last_finished_at: datetime | None
    overdue: bool

    @property
    def sentence(self) -> str:
        """The deployment's state in words."""
        last = ("no run yet" if self.last_finished_at is None
                else f"last run {self.last_state} at {self.last_finished_at:%b %d %H:%M}")
        if self.overdue:
            return f"{self.deployment.name}: overdue ({last}, one was due by now)"
        if self.deployment.cron is None:
            return f"{self.deployment.name}: schedule off ({last})"
        return f"{self.deployment.name}: on time ({last})"


@dataclass(frozen=True)
class SchedulerHealth:
    """The scheduler's heartbeat and each of its deployments; alive False when it stopped."""

    beat_at: datetime | None
    stopped_at: datetime | None
    alive: bool
    deployments: tuple[DeploymentHealth, ...]


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def scheduler_health(home: Path, now: datetime) -> SchedulerHealth | None:
    """Read the heartbeat and the last runs; None when no scheduler ever ran here."""
    folder = scheduler_dir(home)
    beat = _read_json(folder / "heartbeat.json")
    if beat is None:
        return None
    beat_at, stopped_at = _time(beat.get("beat_at")), _time(beat.get("stopped_at"))
    started_at = _time(beat.get("started_at")) or beat_at
    alive = stopped_at is None and beat_at is not None and now - beat_at <= STALE_AFTER
    health = []
    for raw in beat.get("deployments") or []:
        deployment = Deployment(str(raw.get("name")), str(raw.get("job")), raw.get("cron"),
                                raw.get("every_seconds"))
        last = _read_json(folder / f"last-run-{deployment.job}.json") or {}
        finished = _time(last.get("finished_at"))
        overdue = False
        if deployment.every_seconds and alive and started_at is not None:
            due = timedelta(seconds=float(deployment.every_seconds)) + OVERDUE_GRACE
            since = max(finished, started_at) if finished else started_at
            overdue = now - since > due
        health.append(DeploymentHealth(deployment, last.get("state"), finished, overdue))
    return SchedulerHealth(beat_at, stopped_at, alive, tuple(health))
