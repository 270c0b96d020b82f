"""The dashboard's read layer: the published Parquet snapshot, never the DuckDB file.

Any open connection to the database, even read-only, would block the flows that write it,
so pages read the snapshot the flows publish and swap in atomically. Tables are cached by
their path, which names the snapshot, so a new snapshot is a new cache entry and an old one
is simply no longer asked for. `st.cache_resource` rather than `st.cache_data` for the raw
tables: a snapshot never changes once written, polars frames are immutable, and cache_data
would pickle a copy of a million-row frame on every rerun.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import streamlit as st

from pipeline.publish.reader import NoSnapshotError, Snapshot, current_snapshot
from pipeline.settings import Settings, load_settings

# A flow that wrote to the database within this many seconds is taken to be running.
WRITING_WINDOW_SECONDS = 15 * 60


class SnapshotGoneError(RuntimeError):
    """The snapshot being read was replaced and removed while the page read it."""


def app_settings() -> Settings:
    """Settings from the environment the dashboard was started with."""
    return load_settings()


def open_snapshot(settings: Settings) -> Snapshot | None:
    """The current snapshot, or None when nothing has been published yet."""
    for attempt in (1, 2):
        try:
            return current_snapshot(settings.published_dir)
        except NoSnapshotError:
            return None
        except (FileNotFoundError, json.JSONDecodeError):
            # The pointer moved between reading it and reading the folder: read it again.
            if attempt == 2:
                raise SnapshotGoneError("the published figures changed twice while reading") from None
            time.sleep(0.05)
    return None


def read_table(snapshot: Snapshot, name: str) -> pl.DataFrame | None:
    """One table of the snapshot; None when this snapshot does not publish it (yet)."""
    path = snapshot.path / f"{name}.parquet"
    try:
        return cached_parquet(str(path))
    except FileNotFoundError:
        if snapshot.path.is_dir():
            return None
        raise SnapshotGoneError(f"snapshot {snapshot.stamp} was removed while being read") from None


@st.cache_resource(ttl=3600, max_entries=24, show_spinner=False)
def cached_parquet(path: str) -> pl.DataFrame:
    """Read one immutable snapshot file (cached per path)."""
    return pl.read_parquet(path)


def published_tables(snapshot: Snapshot) -> list[str]:
    """Names of the tables this snapshot publishes."""
    return sorted(p.stem for p in snapshot.path.glob("*.parquet"))


@dataclass(frozen=True)
class Activity:
    """What the writers are doing now, as far as the file system tells."""

    publishing: bool
    writing_since: datetime | None

    @property
    def message(self) -> str | None:
        """A sentence for the reader, or None when nothing is going on."""
        if self.publishing:
            return "New figures are being published right now; this page shows the previous ones."
        if self.writing_since is not None:
            return (
                f"A flow has been writing new data since {self.writing_since:%H:%M}; the figures "
                "here update when it finishes and publishes."
            )
        return None


def writer_activity(settings: Settings, now: float | None = None) -> Activity:
    """Tell whether a flow is writing or publishing, without opening the database.

    DuckDB keeps a .wal file next to the database while a writer has it open; a flow
    publishes through a .staging-* folder that is renamed when complete.
    """
    now = time.time() if now is None else now
    published = settings.published_dir
    publishing = published.is_dir() and any(
        p.name.startswith(".staging-") for p in published.iterdir()
    )
    wal = Path(f"{settings.database_path}.wal")
    writing_since = None
    try:
        modified = wal.stat().st_mtime
    except FileNotFoundError:
        modified = None
    if modified is not None and now - modified < WRITING_WINDOW_SECONDS:
        writing_since = datetime.fromtimestamp(modified)
    return Activity(publishing, writing_since)


def meta_int(snapshot: Snapshot, key: str) -> int:
    """An integer from the snapshot's metadata (0 when absent)."""
    value = snapshot.meta.get(key)
    return int(str(value)) if value not in (None, "") else 0


def meta_time(snapshot: Snapshot, key: str) -> datetime | None:
    """A timestamp from the snapshot's metadata, or None."""
    value = snapshot.meta.get(key)
    if value in (None, ""):
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
