"""Settings read once from the environment, with defaults that make the embedded demo work."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path("data")


@dataclass(frozen=True)
class Settings:
    """Where the program keeps its files and the thresholds it publishes under."""

    home: Path
    min_group_size: int = 10
    # A pending case not seen for this many days before the data ends is counted stale.
    stale_after_days: int = 180

    @property
    def database_path(self) -> Path:
        """The analytics DuckDB file: only flows open it, one writer at a time."""
        return self.home / "timelines.duckdb"

    @property
    def published_dir(self) -> Path:
        """Read-only snapshots the dashboard reads, swapped in atomically after each flow."""
        return self.home / "published"

    @property
    def key_path(self) -> Path:
        """The secret pseudonym key (0600) unless TIMELINES_PSEUDONYM_KEY is set."""
        return self.home / "pseudonym.key"

    @property
    def inbox_dir(self) -> Path:
        """Anonymized submissions waiting for the ingest flow."""
        return self.home / "inbox"

    @property
    def exports_dir(self) -> Path:
        """Default folder for open-data exports."""
        return self.home / "exports"

    @property
    def lock_path(self) -> Path:
        """Advisory lock that serialises writers of the analytics database."""
        return self.home / "timelines.duckdb.writer-lock"

    def ensure_home(self) -> Path:
        """Create the home folder (and its parents) if it does not exist yet."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from the environment (TIMELINES_HOME, _MIN_GROUP_SIZE, _STALE_AFTER_DAYS)."""
    env = os.environ if env is None else env
    home = Path(env.get("TIMELINES_HOME") or DEFAULT_HOME).expanduser()
    raw_k = env.get("TIMELINES_MIN_GROUP_SIZE", "10")
    try:
        k = int(raw_k)
    except ValueError as exc:
        raise ValueError(
            f"TIMELINES_MIN_GROUP_SIZE must be a whole number, got {raw_k!r}"
        ) from exc
    if k < 1:
        raise ValueError(f"TIMELINES_MIN_GROUP_SIZE must be at least 1, got {k}")
    raw_stale = env.get("TIMELINES_STALE_AFTER_DAYS", "180")
    try:
        stale = int(raw_stale)
    except ValueError as exc:
        raise ValueError(
            f"TIMELINES_STALE_AFTER_DAYS must be a whole number of days, got {raw_stale!r}"
        ) from exc
    if stale < 1:
        raise ValueError(f"TIMELINES_STALE_AFTER_DAYS must be at least 1, got {stale}")
    return Settings(home=home, min_group_size=k, stale_after_days=stale)
