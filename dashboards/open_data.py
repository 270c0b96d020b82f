"""The open-data export as downloads: the whole export zipped, or one table, per snapshot."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from dashboards.data import SnapshotGoneError
from pipeline.publish.export import export_tables, public_table
from pipeline.publish.reader import Snapshot


def snapshot_at(folder: str) -> Snapshot:
    """The snapshot stored in `folder` (SnapshotGoneError when it was removed)."""
    path = Path(folder)
    try:
        return Snapshot(path, json.loads((path / "meta.json").read_text()))
    except FileNotFoundError:
        raise SnapshotGoneError(f"snapshot {path.name} was removed") from None


@st.cache_data(ttl=3600, max_entries=8, show_spinner="Preparing the download…")
def export_zip(folder: str) -> bytes:
    """The whole open-data export of one snapshot, as `timelines export` writes it, zipped."""
    snapshot = snapshot_at(folder)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        result = export_tables(snapshot, Path(tmp) / "open-data")
        for path in result.files:
            z.write(path, f"uscis-timelines-{snapshot.stamp}/{path.name}")
    return buffer.getvalue()


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def table_bytes(folder: str, source: str, fmt: str) -> bytes:
    """One exported table (suppressed rows emptied) as CSV or Parquet bytes."""
    table = public_table(snapshot_at(folder), source)
    buffer = io.BytesIO()
    if fmt == "csv":
        table.write_csv(buffer)
    else:
        table.write_parquet(buffer)
    return buffer.getvalue()
