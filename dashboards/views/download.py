"""Download: the open-data export (aggregated, suppressed tables and their data dictionary)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import data, notices
from dashboards.open_data import export_zip, table_bytes
from pipeline.publish.export import COLUMN_DOCS, EXPORTED_TABLES


def render() -> None:
    """Draw the download page."""
    settings = data.app_settings()
    st.title("Download the open data")
    snapshot = notices.require_snapshot(settings)
    k = notices.min_group_size(snapshot, settings)
    st.markdown(
        f"Aggregated tables only: every group of fewer than **{k} cases** is a row with "
        "`suppressed = true` and no counts or figures. No case-level rows and no identifiers "
        f"are offered. When you use them, cite the snapshot `{snapshot.stamp}`."
    )
    offered = [(name, source, about) for name, (source, about) in EXPORTED_TABLES.items()
               if (snapshot.path / f"{source}.parquet").exists()]
    if not offered:
        st.info("This snapshot publishes no aggregated tables yet: run `timelines refresh`.")
        return
    st.download_button(
        "Everything, with the data dictionary (zip)", export_zip(str(snapshot.path)),
        file_name=f"uscis-timelines-{snapshot.stamp}.zip", mime="application/zip",
        key="download_all", on_click="ignore", icon=":material/folder_zip:", type="primary",
    )
    st.caption("The same files as `timelines export DIR`: each table as CSV and Parquet, plus "
               "data_dictionary.md / .csv and meta.json.")
    for name, source, about in offered:
        st.markdown(f"**{name}** · {about}")
        cols = st.columns([1, 1, 4])
        for col, fmt, mime in ((cols[0], "csv", "text/csv"),
                               (cols[1], "parquet", "application/vnd.apache.parquet")):
            col.download_button(fmt.upper(), table_bytes(str(snapshot.path), source, fmt),
                                file_name=f"{name}.{fmt}", mime=mime, key=f"{fmt}_{name}",
                                on_click="ignore", icon=":material/download:")
        table = data.read_table(snapshot, source)
        with cols[2].expander("Columns"):
            if table is not None:
                st.dataframe(_dictionary(table), hide_index=True, width="stretch")


def _dictionary(table: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({
        "column": table.columns,
        "type": [str(t) for t in table.dtypes],
        "meaning": [COLUMN_DOCS.get(c, "") for c in table.columns],
    })


render()
