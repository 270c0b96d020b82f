"""Draw docs/img/pending_cases_matter.png from a synthetic sample, as the method page shows it.

    uv run python docs/img/make_methodology_chart.py

Generates 4,000 synthetic cases, runs them through the real ingest and refresh, and plots
the Kaplan-Meier "still waiting" curve of one form (with its 95% band) against the curve you
get from finished cases only, which is what most trackers show.
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import altair as alt
import numpy as np
import polars as pl
import vl_convert as vlc

from pipeline.analytics.survival import kaplan_meier, survival_quantile
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample

FORM = "I-485"
OUT = Path(__file__).resolve().parent / "pending_cases_matter.png"


def curves(durations: pl.DataFrame) -> tuple[pl.DataFrame, float, float]:
    """Both curves as one tidy frame, and the two medians."""
    cases = durations.filter(pl.col("form_type") == FORM)
    days, decided = cases["duration_days"].to_numpy(), cases["decided"].to_numpy()
    honest = kaplan_meier(days, decided)
    naive = kaplan_meier(days[decided], np.ones(int(decided.sum()), dtype=bool))
    frames = [
        pl.DataFrame({"day": honest.timeline, "still_waiting": honest.survival,
                      "low": honest.ci_low, "high": honest.ci_high,
                      "estimate": "all cases, pending ones counted as still waiting"}),
        pl.DataFrame({"day": naive.timeline, "still_waiting": naive.survival,
                      "low": naive.survival, "high": naive.survival,
                      "estimate": "finished cases only (what most trackers show)"}),
    ]
    medians = survival_quantile(honest, 0.5).value, survival_quantile(naive, 0.5).value
    return pl.concat(frames), float(medians[0] or 0), float(medians[1] or 0)


def chart(frame: pl.DataFrame, honest: float, naive: float, n: int, pending: int) -> alt.Chart:
    """Step curves with the 95% band and a line at one half."""
    colors = alt.Scale(domain=frame["estimate"].unique(maintain_order=True).to_list(),
                       range=["#1f5fa8", "#d1495b"])
    base = alt.Chart(frame).encode(
        x=alt.X("day:Q", title="days since USCIS received the case"),
        color=alt.Color("estimate:N", scale=colors, legend=alt.Legend(orient="bottom",
                                                                      title=None, labelLimit=400)),
    )
    band = base.mark_area(opacity=0.2, interpolate="step-after").encode(
        y=alt.Y("low:Q"), y2="high:Q")
    line = base.mark_line(interpolate="step-after", strokeWidth=2).encode(
        y=alt.Y("still_waiting:Q", title="share of cases still waiting", axis=alt.Axis(format="%")))
    half = alt.Chart(pl.DataFrame({"y": [0.5]})).mark_rule(strokeDash=[4, 4], color="gray") \
        .encode(y="y:Q")
    title = alt.TitleParams(
        f"{FORM} (synthetic sample): median {honest:.0f} days, not {naive:.0f}",
        subtitle=f"{n} cases, {pending} still pending. Leaving pending cases out makes "
                 "the wait look shorter. Shaded: 95% band.",
    )
    return (band + line + half).properties(width=640, height=320, title=title)


def main() -> None:
    """Build the sample, compute, draw, save the PNG."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(home=Path(scratch))
        write_sample(settings.home / "sample", 4000, seed=11, as_of=date(2026, 6, 30))
        ingest_job.ingest(settings, [settings.home / "sample"])
        refresh_job.refresh(settings)
        refresh_job.publish(settings)
        durations = current_snapshot(settings.published_dir).table("durations")
    frame, honest, naive = curves(durations)
    cases = durations.filter(pl.col("form_type") == FORM)
    spec = chart(frame, honest, naive, cases.height, int((~cases["decided"]).sum()))
    OUT.write_bytes(vlc.vegalite_to_png(spec.to_json(), scale=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
