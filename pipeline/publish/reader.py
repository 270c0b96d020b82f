"""Reading the latest published snapshot: what the dashboard and `timelines stats` show."""

from __future__ import annotations

import json
import re
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
    notice: str | None = None  # set when CURRENT was damaged and an older snapshot is shown

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


_STAMP_RE = re.compile(r"^\d{8}T\d{12}$")
REQUIRED_FILES = ("meta.json", "case_stats.parquet")


def _valid(published_dir: Path, name: str) -> Snapshot | None:
    """The snapshot folder `name` if it is one of ours and whole, else None."""
    if not _STAMP_RE.match(name):
        return None
    folder = published_dir / name
    try:
        if folder.is_symlink() or not folder.is_dir():
            return None
        if folder.resolve().parent != published_dir.resolve():
            return None
        if not all((folder / f).is_file() for f in REQUIRED_FILES):
            return None
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("snapshot") != name:
        return None
    return Snapshot(folder, meta)


def current_snapshot(published_dir: Path) -> Snapshot:
    """The snapshot CURRENT points at, checked; else the newest valid one, with a notice.

    The pointer must name a snapshot folder inside published/ (name pattern, no link), whose
    metadata parses and whose files are there. If it does not, the newest valid snapshot is
    used and `Snapshot.notice` says so; NoSnapshotError when there is none at all.
    """
    pointer = published_dir / POINTER
    name: str | None = None
    try:
        raw = pointer.read_bytes()[:200] if pointer.is_file() and not pointer.is_symlink() else None
    except OSError:
        raw = None
    if raw is not None:
        name = raw.decode("ascii", errors="replace").strip()
        found = _valid(published_dir, name)
        if found is not None:
            return found
    try:
        candidates = sorted((p.name for p in published_dir.iterdir()), reverse=True)
    except OSError:
        candidates = []
    for candidate in candidates:
        found = _valid(published_dir, candidate)
        if found is not None:
            why = "is damaged" if raw is not None else "is missing"
            return Snapshot(found.path, found.meta, notice=(
                f"The pointer to the newest figures {why}; showing the last good ones, "
                f"published {found.meta.get('published_at') or found.stamp}."))
    raise NoSnapshotError(
        f"no statistics have been published in {published_dir.parent} yet: "
        "run `timelines ingest PATH` and `timelines refresh` (or `timelines demo`)"
    )


def public_stats(stats: pl.DataFrame) -> pl.DataFrame:
    """Blank every count and figure of a suppressed group: only 'too small' is published."""
    figures = [c for c in stats.columns if c not in {"form_type", "office", "suppressed", "computed_at"}]
    return stats.with_columns(
        [pl.when(pl.col("suppressed")).then(None).otherwise(pl.col(c)).alias(c) for c in figures]
    )
