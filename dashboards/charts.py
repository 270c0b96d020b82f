"""Altair charts of the dashboard: small aggregated frames in, charts with tooltips out.

Charts never receive case-level rows: the figures module aggregates first, so a chart stays
a few hundred points whatever the number of cases. Legends sit below the plot and widths
follow the container, so they read on a phone as well as on a laptop.
"""

from __future__ import annotations

import altair as alt
import pandas  # noqa: F401  (Altair and Streamlit import it lazily; at module top, not racing)
import polars as pl

HEIGHT = 320
# Legends below the plot in a few columns, short enough to fit a 390 px phone.
_LEGEND = alt.Legend(orient="bottom", direction="horizontal", columns=3, labelLimit=110)
# a line's legend: solid strokes (the band's pale fill would otherwise be merged into it)
_LINE_LEGEND = alt.Legend(orient="bottom", direction="horizontal", columns=3, labelLimit=110,
                          symbolType="stroke", symbolStrokeWidth=3, symbolOpacity=1,
                          symbolSize=300)
_LONG_LEGEND = alt.Legend(orient="bottom", direction="horizontal", columns=1, labelLimit=300)
# Time axes say the year: "Sep 2025", not "September".
_MONTH_AXIS = alt.Axis(format="%b %Y", labelOverlap=True, labelAngle=0)
# Distinct hues for groups (Streamlit's default palette pairs light and dark shades).
_GROUP_SCALE = alt.Scale(scheme="tableau10")


def survival_chart(curves: pl.DataFrame, group_col: str, group_title: str) -> alt.LayerChart:
    """Share of cases still waiting after each day, one step line per group, with its band."""
    base = alt.Chart(curves).encode(
        x=alt.X("time:Q", title="days since receipt", scale=alt.Scale(domainMin=0, nice=False)),
        color=alt.Color(f"{group_col}:N", title=group_title, legend=_LINE_LEGEND,
                        scale=_GROUP_SCALE),
    )
    band = base.mark_area(opacity=0.15, interpolate="step-after").encode(
        y=alt.Y("ci_low:Q"), y2=alt.Y2("ci_high:Q"),
    )
    line = base.mark_line(interpolate="step-after", strokeWidth=2).encode(
        y=alt.Y("survival:Q", title="share still waiting", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1]))
    )
    points = base.mark_circle(size=60, opacity=0).encode(
        y="survival:Q",
        tooltip=[
            alt.Tooltip(f"{group_col}:N", title=group_title),
            alt.Tooltip("time:Q", title="day", format=",.0f"),
            alt.Tooltip("survival:Q", title="still waiting", format=".0%"),
            alt.Tooltip("ci_low:Q", title="95% band from", format=".0%"),
            alt.Tooltip("ci_high:Q", title="95% band to", format=".0%"),
            alt.Tooltip("at_risk:Q", title="cases still followed", format=","),
        ],
    )
    marks = pl.DataFrame({"level": [0.5, 0.2], "label": ["half decided", "80% decided"]})
    rules = alt.Chart(marks).mark_rule(strokeDash=[4, 4], color="gray").encode(
        y="level:Q", tooltip=alt.Tooltip("label:N", title="line")
    )
    return alt.layer(band, line, points, rules).properties(height=HEIGHT)


def histogram_chart(bins: pl.DataFrame) -> alt.Chart:
    """Cases per duration bin, stacked by whether they are decided or still waiting."""
    return (
        alt.Chart(bins)
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", title="days since receipt (to decision, or so far)",
                    scale=alt.Scale(domainMin=0, nice=False)),
            x2="bin_end:Q",
            y=alt.Y("sum(n):Q", title="cases", stack="zero"),
            color=alt.Color(
                "status:N", title="",
                scale=alt.Scale(domain=["decided", "still waiting (so far)", "withdrawn or rejected"],
                                range=["#1f77b4", "#ff7f0e", "#9e9e9e"]),
                legend=_LONG_LEGEND,
            ),
            tooltip=[
                alt.Tooltip("bin_start:Q", title="from day", format=","),
                alt.Tooltip("bin_end:Q", title="to day", format=","),
                alt.Tooltip("status:N"),
                alt.Tooltip("sum(n):Q", title="cases", format=","),
            ],
        )
        .properties(height=HEIGHT)
    )


def typical_waits_chart(table: pl.DataFrame) -> alt.LayerChart:
    """Median (dot) to 80th percentile (tick) per form, with the counts behind them."""
    shown = table.filter(~pl.col("suppressed") & pl.col("median_days").is_not_null())
    order = shown.sort("median_days")["form_type"].to_list()
    base = alt.Chart(shown).encode(
        y=alt.Y("form_type:N", title=None, sort=order),
        tooltip=[
            alt.Tooltip("form_type:N", title="form"),
            alt.Tooltip("median_days:Q", title="median days", format=",.0f"),
            alt.Tooltip("p80_days:Q", title="80% decided by day", format=",.0f"),
            alt.Tooltip("n_cases:Q", title="cases", format=","),
            alt.Tooltip("n_pending:Q", title="still waiting", format=","),
        ],
    )
    span = base.mark_rule(strokeWidth=3, opacity=0.5).encode(
        x=alt.X("median_days:Q", title="days since receipt"), x2="p80_days:Q"
    )
    median = base.mark_circle(size=110).encode(x="median_days:Q")
    p80 = base.mark_tick(thickness=3, size=18).encode(x="p80_days:Q")
    return alt.layer(span, median, p80).properties(height=max(160, 34 * len(order)))


def cohort_chart(trend: pl.DataFrame) -> alt.LayerChart:
    """Kaplan-Meier median days per filing month, with its 95% interval."""
    shown = trend.filter(~pl.col("suppressed"))
    base = alt.Chart(shown).encode(x=alt.X("received_month:T", title="month filed",
                                           axis=_MONTH_AXIS))
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("median_ci_low:Q", title="median days to decision"), y2="median_ci_high:Q"
    )
    line = base.mark_line(point=True).encode(
        y="median_days:Q",
        tooltip=[
            alt.Tooltip("received_month:T", title="filed", format="%b %Y"),
            alt.Tooltip("median_days:Q", title="median days", format=",.0f"),
            alt.Tooltip("median_ci_low:Q", title="95% CI from", format=",.0f"),
            alt.Tooltip("median_ci_high:Q", title="95% CI to", format=",.0f"),
            alt.Tooltip("n_cases:Q", title="cases", format=","),
            alt.Tooltip("pending_share:Q", title="still waiting", format=".0%"),
        ],
    )
    return alt.layer(band, line).properties(height=HEIGHT)


def pending_share_chart(trend: pl.DataFrame) -> alt.Chart:
    """Share of each filing month's cases still waiting."""
    return (
        alt.Chart(trend.filter(~pl.col("suppressed")))
        .mark_bar()
        .encode(
            x=alt.X("received_month:T", title="month filed", axis=_MONTH_AXIS),
            y=alt.Y("pending_share:Q", title="share still waiting", axis=alt.Axis(format="%")),
            tooltip=[
                alt.Tooltip("received_month:T", title="filed", format="%b %Y"),
                alt.Tooltip("pending_share:Q", title="still waiting", format=".0%"),
                alt.Tooltip("n_pending:Q", title="cases waiting", format=","),
                alt.Tooltip("n_cases:Q", title="cases", format=","),
            ],
        )
        .properties(height=220)
    )


def decisions_chart(trend: pl.DataFrame) -> alt.Chart:
    """Decisions per month, with the median wait of the cases decided that month."""
    return (
        alt.Chart(trend.filter(~pl.col("suppressed")))
        .mark_bar()
        .encode(
            x=alt.X("decision_month:T", title="month decided", axis=_MONTH_AXIS),
            y=alt.Y("n_decisions:Q", title="decisions"),
            color=alt.Color("median_days:Q", title="median days", legend=_LEGEND,
                            scale=alt.Scale(scheme="blues")),
            tooltip=[
                alt.Tooltip("decision_month:T", title="decided", format="%b %Y"),
                alt.Tooltip("n_decisions:Q", title="decisions", format=","),
                alt.Tooltip("n_approved:Q", title="approved", format=","),
                alt.Tooltip("median_days:Q", title="median days", format=",.0f"),
                alt.Tooltip("p80_days:Q", title="80th pct days", format=",.0f"),
            ],
        )
        .properties(height=HEIGHT)
    )


def comparison_chart(table: pl.DataFrame, group_title: str = "office") -> alt.Chart:
    """Community vs official 80th percentile (days) side by side per group."""
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            y=alt.Y("group:N", title=group_title),
            yOffset="source:N",
            x=alt.X("days:Q", title="80% of cases decided within (days)"),
            color=alt.Color("source:N", title="", legend=_LONG_LEGEND),
            tooltip=[alt.Tooltip("group:N", title=group_title), "source:N",
                     alt.Tooltip("days:Q", format=",.0f")],
        )
        .properties(height=alt.Step(14))
    )


def bar_chart(table: pl.DataFrame, label: str, value: str, label_title: str,
              value_title: str) -> alt.Chart:
    """A horizontal bar per row (long labels allowed), largest first."""
    return (
        alt.Chart(table)
        .mark_bar()
        .encode(
            y=alt.Y(f"{label}:N", title=label_title, sort="-x",
                    axis=alt.Axis(labelLimit=320)),
            x=alt.X(f"{value}:Q", title=value_title),
            tooltip=[alt.Tooltip(f"{label}:N", title=label_title),
                     alt.Tooltip(f"{value}:Q", title=value_title, format=",")],
        )
        .properties(height=alt.Step(22))
    )


def poll_outcomes_chart(outcomes: pl.DataFrame) -> alt.Chart:
    """Polls per day stacked by outcome (ok, not found, error, quota)."""
    return (
        alt.Chart(outcomes)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="day", axis=alt.Axis(format="%b %d, %Y", labelOverlap=True)),
            y=alt.Y("sum(n_polls):Q", title="polls"),
            color=alt.Color(
                "outcome:N", title="",
                scale=alt.Scale(domain=["ok", "not_found", "invalid", "error", "quota"],
                                range=["#2ca02c", "#9e9e9e", "#ff7f0e", "#d62728", "#9467bd"]),
                legend=_LEGEND,
            ),
            tooltip=[alt.Tooltip("day:T", format="%b %d, %Y"), "outcome:N",
                     alt.Tooltip("sum(n_polls):Q", title="polls", format=","),
                     alt.Tooltip("sum(n_new_events):Q", title="new events", format=",")],
        )
        .properties(height=220)
    )


def backlog_chart(trends: pl.DataFrame) -> alt.LayerChart:
    """Cases known to be pending at each month's end (line) and that month's decisions (bars)."""
    waiting, decided = "still waiting at month end", "decided that month"
    colour = alt.Color("series:N", title="", legend=_LONG_LEGEND,
                       scale=alt.Scale(domain=[waiting, decided], range=["#ff7f0e", "#1f77b4"]))
    base = alt.Chart(trends).encode(x=alt.X("decision_month:T", title="month", axis=_MONTH_AXIS))
    tooltip = [alt.Tooltip("decision_month:T", title="month", format="%b %Y"),
               alt.Tooltip("n_pending_end:Q", title=waiting, format=","),
               alt.Tooltip("n_decided:Q", title=decided, format=",")]
    bars = base.transform_calculate(series=f"'{decided}'").mark_bar(opacity=0.35).encode(
        y=alt.Y("n_decided:Q", title="cases"), color=colour, tooltip=tooltip)
    line = base.transform_calculate(series=f"'{waiting}'").mark_line(point=True).encode(
        y="n_pending_end:Q", color=colour, tooltip=tooltip)
    return alt.layer(bars, line).properties(height=260)


def silent_updates_chart(updates: pl.DataFrame) -> alt.Chart:
    """Silent updates per week, one colour per office."""
    return (
        alt.Chart(updates)
        .mark_bar()
        .encode(
            x=alt.X("week:T", title="week",
                    axis=alt.Axis(format="%b %d, %Y", labelOverlap=True)),
            y=alt.Y("sum(n_silent_updates):Q", title="updates without a new status"),
            color=alt.Color("office:N", title="office", legend=_LEGEND, scale=_GROUP_SCALE),
            tooltip=[alt.Tooltip("week:T", format="%b %d, %Y"), "office:N",
                     alt.Tooltip("sum(n_silent_updates):Q", title="silent updates"),
                     alt.Tooltip("sum(n_modifications):Q", title="all modifications"),
                     alt.Tooltip("sum(n_cases):Q", title="cases")],
        )
        .properties(height=220)
    )


def office_medians_chart(medians: pl.DataFrame) -> alt.LayerChart:
    """Median wait per office (dot) with its 95% interval (bar); an open end reaches the edge."""
    base = alt.Chart(medians).encode(
        y=alt.Y("office:N", title=None, sort=alt.SortField("order")),
        tooltip=[alt.Tooltip("office:N"), alt.Tooltip("median_days:Q", title="median days",
                                                       format=",.0f"),
                 alt.Tooltip("ci_low:Q", title="95% CI from", format=",.0f"),
                 alt.Tooltip("ci_high:Q", title="95% CI to", format=",.0f"),
                 alt.Tooltip("n_cases:Q", title="cases", format=",")],
    )
    span = base.mark_rule(strokeWidth=4, opacity=0.45).encode(
        x=alt.X("ci_low:Q", title="median days to a decision (95% interval)"), x2="ci_end:Q")
    dot = base.mark_circle(size=110, opacity=1).encode(x="median_days:Q")
    return alt.layer(span, dot).properties(height=max(120, 30 * medians.height))
