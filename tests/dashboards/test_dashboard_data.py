"""The dashboard's read layer: snapshots only, swaps while reading, and writer activity."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboards import data
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
from tests.support.dashboard import APP, publish_sample


@pytest.fixture(scope="module")
def two_snapshots(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home published twice, so an older and a newer snapshot exist."""
    settings = publish_sample(tmp_path_factory.mktemp("data") / "home", n_cases=200)
    refresh_job.publish(settings)
    return settings


def test_no_snapshot_is_none(settings: Settings) -> None:
    assert data.open_snapshot(settings) is None


def test_a_table_the_snapshot_does_not_publish_is_none(two_snapshots: Settings) -> None:
    snapshot = data.open_snapshot(two_snapshots)
    assert snapshot is not None
    assert data.read_table(snapshot, "poll_outcomes_not_published") is None
    runs = data.read_table(snapshot, "runs")
    assert runs is not None and set(runs["flow"]) >= {"ingest", "refresh"}


def test_a_snapshot_removed_while_reading_is_reported_and_the_newer_one_is_read(
    tmp_path: Path,
) -> None:
    settings = publish_sample(tmp_path / "home", n_cases=120)
    old = data.open_snapshot(settings)
    assert old is not None
    refresh_job.publish(settings)
    shutil.rmtree(old.path)  # what pruning does once enough newer snapshots exist
    with pytest.raises(data.SnapshotGoneError):
        data.read_table(old, "quarantine_reasons")
    newer = data.open_snapshot(settings)
    assert newer is not None and newer.stamp != old.stamp
    assert data.read_table(newer, "quarantine_reasons") is not None


def test_a_pointer_to_a_vanished_snapshot_falls_back_with_a_notice_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = publish_sample(tmp_path / "home", n_cases=120)
    (settings.published_dir / "CURRENT").write_text("20000101T000000000000")
    monkeypatch.setenv("TIMELINES_HOME", str(settings.home))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert any("showing the last good ones" in w.value for w in at.sidebar.warning)


def test_the_dashboard_never_opens_the_database(two_snapshots: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMELINES_HOME", str(two_snapshots.home))
    database = two_snapshots.database_path
    hidden = database.with_suffix(".hidden")
    database.rename(hidden)
    try:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        for page in ("processing_times", "trends", "health", "download", "my_case"):
            at.switch_page(f"views/{page}.py").run()
            assert not at.exception, page
        assert not database.exists(), "no page created or opened the database"
    finally:
        hidden.rename(database)


def test_no_activity_when_nothing_writes(two_snapshots: Settings) -> None:
    activity = data.writer_activity(two_snapshots)
    assert activity.message is None


def test_a_publish_in_progress_is_announced(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "home")
    (settings.published_dir / ".staging-20260101T000000-123").mkdir(parents=True)
    assert "being published" in (data.writer_activity(settings).message or "")


def test_a_recent_database_write_is_announced_and_a_stale_one_is_not(tmp_path: Path) -> None:
    settings = Settings(tmp_path / "home")
    settings.home.mkdir(parents=True)
    wal = Path(f"{settings.database_path}.wal")
    wal.write_bytes(b"")
    assert "writing new data" in (data.writer_activity(settings).message or "")
    old = time.time() - 2 * data.WRITING_WINDOW_SECONDS
    os.utime(wal, (old, old))
    assert data.writer_activity(settings).message is None
