"""Official vs community: USCIS's published processing times beside our 80th percentile."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data, filters, notices
from dashboards.formatting import TOO_FEW, days_with_interval, when
from dashboards.tables import show_table
from pipeline.publish.reader import Snapshot

METHODS = """\
**The two figures answer different questions.**

- **USCIS** publishes, per form and office, the time within which **80% of the cases it
  completed over the last six months** were decided. Only finished cases count, so while a
  backlog grows the figure lags behind what someone filing today will wait.
- **Community 80th percentile** here is a Kaplan–Meier estimate over *all* shared cases,
  from receipt to decision, with cases still waiting counted as still waiting. It reflects
  today's backlog, with a 95% interval, but rests on the cases people chose to share.
- **Recently completed** is the closest like-for-like figure: the 80th percentile of our cases
  decided in the last six months, the way USCIS counts.
"""


def render() -> None:
    """Draw the official-vs-community page."""
    settings = data.app_settings()
    st.title("Official vs community")
    st.markdown(METHODS)
    snapshot = notices.require_snapshot(settings)
    k = notices.min_group_size(snapshot, settings)
    comparison = data.read_table(snapshot, "official_comparison")
    if comparison is None or comparison.height == 0:
        st.info(
            "USCIS's published processing times have not been imported yet, so there is "
            "nothing official to compare with. An operator imports them with "
            "`timelines import-official PATH` (the JSON behind egov.uscis.gov/processing-times), "
            "then `timelines refresh`. Until then, here are the community figures alone.",
            icon=":material/info:",
        )
        _community_only(snapshot, k)
        return
    examples = comparison.filter(pl.col("subtype_info").str.contains("EXAMPLE")).height
    if examples:
        st.warning(
            f"**Example figures**: {examples} of the \"USCIS\" figures here come from the "
            "example file the demo imports (docs/examples/official-processing-times-example.json), "
            "not from USCIS. They show how the comparison reads; an operator imports the real "
            "ones with `timelines import-official`.", icon=":material/science:")
    forms = comparison["form_type"].unique().sort().to_list()
    form = filters.url_choice(st, "Form", forms, "form", keep_default=True)
    rows = comparison.filter(pl.col("form_type") == form)
    published = rows["publication_date"].max()
    st.caption(f"Official figures published {when(published)}. Offices are where USCIS counts "
               "a case: the office that has it now.")
    chart_rows = _chart_rows(rows)
    if chart_rows.height:
        st.altair_chart(charts.comparison_chart(chart_rows), width="stretch")
    show_table(_cells(rows, k), "official")


def _chart_rows(rows: pl.DataFrame) -> pl.DataFrame:
    several = pl.len().over("office") > 1  # one office with several USCIS categories
    label = pl.when(several).then(pl.col("office") + pl.lit(" · ") + pl.col("subtype")).otherwise(
        pl.col("office")).alias("group")
    official = rows.select(label, pl.when(pl.col("subtype_info").str.contains("EXAMPLE"))
                           .then(pl.lit("EXAMPLE official figure")).otherwise(
                               pl.lit("USCIS (completed cases)")).alias("source"),
                           pl.col("official_p80_days").alias("days"))
    community = rows.filter(~pl.col("community_suppressed")).select(
        label, pl.lit("community (all cases)").alias("source"),
        pl.col("community_p80_days").alias("days"))
    return pl.concat([official, community]).drop_nulls("days")


def _cells(rows: pl.DataFrame, k: int) -> pl.DataFrame:
    out = []
    for row in rows.iter_rows(named=True):
        suppressed = row["community_suppressed"] or row["community_n_cases"] is None
        out.append({
            "office": row["office"],
            "category": row["subtype_info"] or row["subtype"] or "–",
            "USCIS 80% (days)": f"{row['official_p80_days']:,.0f}",
            "community 80% (95% CI)": TOO_FEW if suppressed else days_with_interval(
                row["community_p80_days"], row["community_p80_ci_low"], row["community_p80_ci_high"]),
            "recently completed 80%": (
                "–" if row["recent_completed_p80_days"] is None
                else f"{row['recent_completed_p80_days']:,.0f}"
            ),
            "cases (still waiting)": (
                f"fewer than {k}" if suppressed
                else f"{row['community_n_cases']:,} ({row['community_n_pending']:,})"
            ),
        })
    return pl.DataFrame(out, schema=dict.fromkeys(
        ["office", "category", "USCIS 80% (days)", "community 80% (95% CI)",
         "recently completed 80%", "cases (still waiting)"], pl.String))


def _community_only(snapshot: Snapshot, k: int) -> None:
    stats = data.read_table(snapshot, "case_stats")
    if stats is None or stats.height == 0:
        return
    form = filters.form_filter(stats, st)
    rows = stats.filter(pl.col("form_type") == form)
    out = []
    for row in rows.iter_rows(named=True):
        out.append({
            "office": row["office"],
            "community 80% (95% CI)": TOO_FEW if row["suppressed"] else days_with_interval(
                row["p80_days"], row["p80_ci_low"], row["p80_ci_high"]),
            "cases": f"fewer than {k}" if row["suppressed"] else f"{row['n_cases']:,}",
        })
    show_table(pl.DataFrame(out, schema=dict.fromkeys(
        ["office", "community 80% (95% CI)", "cases"], pl.String)), "community")


render()
