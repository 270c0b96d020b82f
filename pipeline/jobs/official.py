"""The import-official job: read USCIS processing-time answers, store them, publish.

Written once; `timelines import-official` calls it (a flow would too). The comparison with the
community figures is computed when the snapshot is published, so no refresh is needed.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pipeline.analytics.official import ImportResult, import_official, read_official
from pipeline.jobs.refresh import publish
from pipeline.settings import Settings
from pipeline.store.db import open_store


def import_official_times(
    settings: Settings, path: Path, imported_at: datetime | None = None
) -> ImportResult:
    """Import every answer under `path` in one transaction, then publish a snapshot.

    Raises OfficialImportError (nothing stored) when the files hold no usable figures.
    """
    read = read_official(path)
    settings.ensure_home()
    with open_store(settings.database_path) as con:
        result = import_official(con, read, imported_at)
    publish(settings)
    return result
