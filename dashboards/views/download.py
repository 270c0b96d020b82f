"""Download: the open-data tables, aggregated and suppressed, as CSV or Parquet."""

from __future__ import annotations

import io

import polars as pl
import streamlit as st

from dashboards import data, notices

# Published aggregated tables, in the order offered, with what each holds.
OPEN_TABLES: dict[str, str] = {
    "case_stats": "Receipt-to-decision figures per form and intake office (median, 80th and "
    "90th percentiles with 95% intervals, counts, outcome shares).",
    "group_stats": "The same figures for every grouping: form; form × office (intake or current); "
    "form × filing month; form × office × filing month.",
    "stage_stats": "Stage-to-stage times (receipt to biometrics, RFE to response, ...).",
    "outcome_curves": "Chance of approval and of denial by day, with the other outcomes competing.",
    "decision_trends": "Decisions per month and the waits of the cases decided that month.",
    "official_comparison": "USCIS's published processing times beside the community figures.",
    "silent_updates": "Case updates without a status change, per office and week.",
}


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def encoded(path: str, fmt: str) -> bytes:
    """One published table as CSV or Parquet bytes (cached per snapshot file)."""
    try:
        table = pl.read_parquet(path)
    except FileNotFoundError:
        raise data.SnapshotGoneError(f"{path} was removed while being read") from None
    buffer = io.BytesIO()
    if fmt == "csv":
        table.write_csv(buffer)
    else:
        table.write_parquet(buffer)
    return buffer.getvalue()


def render() -> None:
    """Draw the download page."""
    settings = data.app_settings()
    st.title("Download the open data")
    snapshot = notices.require_snapshot(settings)
    k = notices.min_group_size(snapshot, settings)
    st.markdown(
        f"Aggregated tables only: every group of fewer than **{k} cases** has its figures and "
        "counts left empty, with `suppressed = true`. No case-level rows and no identifiers are "
        "offered. When you use them, cite the snapshot `{snapshot.stamp}`."
    )
    offered = 0
    for name, description in OPEN_TABLES.items():
        path = snapshot.path / f"{name}.parquet"
        table = data.read_table(snapshot, name)
        if table is None:
            continue
        offered += 1
        st.markdown(f"**{name}** · {table.height:,} rows · {description}")
        cols = st.columns([1, 1, 4])
        cols[0].download_button("CSV", encoded(str(path), "csv"), file_name=f"{name}.csv",
                                mime="text/csv", key=f"csv_{name}", on_click="ignore",
                                icon=":material/download:")
        cols[1].download_button("Parquet", encoded(str(path), "parquet"),
                                file_name=f"{name}.parquet", mime="application/vnd.apache.parquet",
                                key=f"parquet_{name}", on_click="ignore",
                                icon=":material/download:")
        with cols[2].expander("Columns"):
            st.dataframe(_columns(table), hide_index=True, width="stretch")
    if offered == 0:
        st.info("This snapshot publishes no aggregated tables yet: run `timelines refresh`.")
    st.caption("The same tables, with a data dictionary, are written by `timelines export DIR`.")


def _columns(table: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"column": table.columns, "type": [str(t) for t in table.dtypes]})


render()
