"""Helpers for the dashboard tests: a TIMELINES_HOME with a published synthetic sample."""

from __future__ import annotations

from pathlib import Path

from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboards" / "app.py"


def publish_sample(home: Path, n_cases: int = 600, seed: int = 7) -> Settings:
    """Generate, ingest, refresh and publish a synthetic sample into `home` (no Prefect)."""
    settings = Settings(home=home)
    write_sample(home / "sample", n_cases, seed)
    ingest_job.ingest(settings, [home / "sample"])
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    return settings
