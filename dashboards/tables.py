"""Tables that read on a phone: a sortable grid on wide screens, stacked rows on narrow ones.

Streamlit's grid scrolls sideways inside itself at 390 px, so each main table is drawn twice:
the grid, and an HTML table whose rows become label/value cards under 640 px. The page CSS
(`RESPONSIVE_CSS`, added once by the app frame) shows exactly one of them. Every cell is
escaped: the cells are our own figures, but nothing reaches the page as markup unescaped.
"""

from __future__ import annotations

import html

import polars as pl
import streamlit as st

RESPONSIVE_CSS = """
<style>
[class*="st-key-narrow_"] { display: none; }
@media (max-width: 640px) {
  [class*="st-key-wide_"] { display: none; }
  [class*="st-key-narrow_"] { display: block; }
}
table.stacked { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
table.stacked th, table.stacked td { text-align: left; padding: 0.25rem 0.4rem;
  border-bottom: 1px solid rgba(128, 128, 128, 0.25); overflow-wrap: anywhere; }
@media (max-width: 640px) {
  table.stacked thead { display: none; }
  table.stacked tr { display: block; margin-bottom: 0.6rem;
    border: 1px solid rgba(128, 128, 128, 0.3); border-radius: 0.4rem; }
  table.stacked td { display: flex; justify-content: space-between; gap: 0.6rem; }
  table.stacked td::before { content: attr(data-label); font-weight: 600; }
}
</style>
"""


def stacked_html(table: pl.DataFrame) -> str:
    """The table as escaped HTML whose cells carry their column name (for the phone layout)."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    rows = []
    for row in table.iter_rows():
        cells = "".join(
            f'<td data-label="{html.escape(c, quote=True)}">'
            f"{'' if v is None else html.escape(str(v))}</td>"
            for c, v in zip(table.columns, row, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="stacked"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def show_table(table: pl.DataFrame, key: str) -> None:
    """Draw a table as a grid on wide screens and as stacked rows on a phone."""
    with st.container(key=f"wide_{key}"):
        st.dataframe(table, hide_index=True, width="stretch")
    with st.container(key=f"narrow_{key}"):
        st.html(stacked_html(table))
