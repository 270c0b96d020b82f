"""Reading the latest published snapshot: what the dashboard and `timelines stats` show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.publish.snapshot import POINTER


class NoSnapshotError(LookupError):
    """Nothing has been published yet."""


@dataclass(frozen=True)
class Snapshot:
    """One published snapshot folder and its metadata."""

    path: Path
    meta: dict[str, object]

    @property
    def stamp(self) -> str:
        """The snapshot's identity; changes whenever a flow publishes."""
        return self.path.name

    def table(self, name: str) -> pl.DataFrame:
        """Read one published table."""
        return pl.read_parquet(self.path / f"{name}.parquet")

    def scan(self, name: str) -> pl.LazyFrame:
        """Scan one published table lazily (for filtered reads of large tables)."""
        return pl.scan_parquet(self.path / f"{name}.parquet")

    @property
    def is_synthetic(self) -> bool:
        """True when any case in it comes from the synthetic sample generator."""
        return int(str(self.meta.get("n_synthetic_cases") or 0)) > 0


def current_snapshot(published_dir: Path) -> Snapshot:
    """The snapshot CURRENT points at, or NoSnapshotError with what to run."""
    pointer = published_dir / POINTER
    if not pointer.exists():
        raise NoSnapshotError(
            f"no statistics have been published in {published_dir.parent} yet: "
            "run `timelines ingest PATH` and `timelines refresh` (or `timelines demo`)"
        )
    folder = published_dir / pointer.read_text().strip()
    meta = json.loads((folder / "meta.json").read_text())
    return Snapshot(folder, meta)

