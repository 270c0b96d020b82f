"""The lake export job: the statistics' inputs as partitioned Parquet, for storage past one machine.

Case-level rows (keyed by pseudonym, never a receipt number): an operator's store, not open data.
The folder is created 0700; `pipeline.publish.lake.open_lake` reads it back as tables.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.publish.lake import export_lake
from pipeline.settings import Settings
from pipeline.store.db import open_store


def export_lake_job(settings: Settings, target: Path) -> dict[str, int]:
    """Write cases, status events and observations under `target`; return the row counts."""
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open_store(settings.database_path) as con:
        return export_lake(con, target)
