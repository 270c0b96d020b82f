"""Benchmark the dashboard's interactions on 1M cases, against a plain read of the same file.

Run on demand (never in tests):  uv run python bench/bench_dashboard.py [--cases 1000000]

Writes a published snapshot whose `durations` table has one row per case (generated with
numpy, the published schema), then times what each interaction runs on the server: the
cached table read, and each page's compute function on a cache miss (a filter never asked
before) and on a cache hit. The baselines, timed in the same run on the same Parquet file,
are a plain polars read of the whole file and a plain DuckDB read of the selected form. The
last rows time a whole page run through Streamlit's AppTest (script, figures, Altair specs),
which is everything but the browser's drawing. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import logging  # noqa: E402

from dashboards import data, queries  # noqa: E402
from pipeline.analytics import case_explainer, figures  # noqa: E402
from pipeline.analytics.answer_card import answer_card  # noqa: E402
from pipeline.analytics.comparisons import cohort_changes, office_medians  # noqa: E402

logging.getLogger("streamlit").setLevel(logging.ERROR)

AS_OF = date(2026, 6, 30)
K = 10
FORMS = {  # form -> (typical days, weight, offices)
    "I-485": (330, 16, ("NBC", "NSC", "TSC", "ELIS")),
    "I-765": (140, 22, ("NBC", "NSC", "TSC", "VSC", "CSC", "PSC", "ELIS")),
    "I-130": (420, 14, ("NBC", "CSC", "NSC", "TSC", "VSC", "PSC", "ELIS")),
    "I-131": (260, 8, ("NBC", "NSC", "TSC", "ELIS")), "N-400": (190, 12, ("ELIS", "NBC")),
    "I-140": (240, 6, ("NSC", "TSC")), "I-129": (90, 7, ("CSC", "VSC")),
    "I-751": (520, 6, ("CSC", "VSC", "ELIS")), "I-90": (230, 5, ("NBC", "ELIS")),
    "I-539": (280, 4, ("CSC", "VSC", "TSC", "PSC")),
}


def durations_frame(n: int, seed: int = 42) -> pl.DataFrame:
    """n cases over three years of filings, log-normal waits, still-pending ones censored."""
    rng = np.random.default_rng(seed)
    names = list(FORMS)
    weights = np.array([FORMS[f][1] for f in names], dtype=float)
    form_idx = rng.choice(len(names), size=n, p=weights / weights.sum())
    forms = np.array(names)[form_idx]
    offices = np.empty(n, dtype=object)
    typical = np.empty(n)
    for i, name in enumerate(names):
        rows = form_idx == i
        offices[rows] = rng.choice(FORMS[name][2], size=int(rows.sum()))
        typical[rows] = FORMS[name][0]
    received = np.datetime64(AS_OF) - rng.integers(0, 3 * 365, size=n).astype("timedelta64[D]")
    wait = np.maximum(1, rng.lognormal(np.log(typical), 0.45)).astype(np.int64)
    waited = (np.datetime64(AS_OF) - received).astype(np.int64)
    decided = wait <= waited
    duration = np.where(decided, wait, waited)
    denied = rng.random(n) < 0.07
    outcome = np.where(decided, np.where(denied, "denied", "approved"), "pending")
    transferred = rng.random(n) < 0.05
    current = np.where(transferred, rng.choice(["NBC", "NSC", "TSC"], size=n), offices)
    frame = pl.DataFrame({
        "form_type": forms, "intake_office": offices.astype(str), "current_office": current,
        "received": received, "duration_days": duration.astype(np.int32), "decided": decided,
        "outcome": outcome, "had_rfe": rng.random(n) < 0.15, "had_interview": rng.random(n) < 0.2,
        "transferred": transferred, "premium": pl.Series([None] * n, dtype=pl.Boolean),
        "synthetic": np.ones(n, dtype=bool), "had_biometrics": rng.random(n) < 0.7,
        "had_rfe_response": rng.random(n) < 0.12,
    })
    return frame.with_columns(
        pl.col("received").cast(pl.Date).dt.truncate("1mo").alias("received_month"),
        pl.when(pl.col("decided"))
        .then((pl.col("received").cast(pl.Date) + pl.duration(days=pl.col("duration_days")))
              .dt.truncate("1mo"))
        .otherwise(None).alias("decision_month"),
    ).drop("received")


def publish(home: Path, durations: pl.DataFrame) -> Path:
    """Write a minimal published snapshot (durations, runs, case_stats) the pages can read."""
    published = home / "published"
    folder = published / "20260630T000000000000"
    folder.mkdir(parents=True)
    durations.write_parquet(folder / "durations.parquet")
    stats = figures.percentile_table(durations, "intake_office", K).rename({"intake_office": "office"})
    stats.write_parquet(folder / "case_stats.parquet")
    now = datetime.now()
    pl.DataFrame({"run_id": [1], "flow": ["ingest"], "started_at": [now], "finished_at": [now],
                  "status": ["ok"], "n_read": [durations.height], "n_stored": [durations.height],
                  "n_rejected": [0], "n_new_cases": [durations.height], "n_new_events": [0],
                  "message": [None]}).write_parquet(folder / "runs.parquet")
    (folder / "meta.json").write_text(json.dumps({
        "snapshot": folder.name, "published_at": now.isoformat(timespec="seconds"),
        "n_cases": durations.height, "n_events": 0, "n_synthetic_cases": durations.height,
        "min_group_size": K, "last_ingest_at": now.isoformat(), "schema_version": 5,
    }))
    (published / "CURRENT").write_text(folder.name)
    return folder


def timed(step: Callable[[], Any], repeat: int) -> float:
    """Median wall seconds of `repeat` runs after one warm-up."""
    step()
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def once(step: Callable[[], Any]) -> float:
    """Wall seconds of one run."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def ms(seconds: float) -> str:
    """Seconds as milliseconds for the table."""
    return f"{seconds * 1000:,.1f} ms"


def page_run_seconds(home: Path, page: str, query: dict[str, str], repeat: int) -> float:
    """Median wall time of a whole page run through AppTest (warm caches)."""
    from streamlit.testing.v1 import AppTest

    os.environ["TIMELINES_HOME"] = str(home)
    at = AppTest.from_file(str(REPO / "dashboards" / "app.py"), default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(f"views/{page}.py").run()
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    return timed(lambda: at.run(), repeat)


def main() -> None:
    """Generate, publish, time and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="100,000 cases, 3 repeats")
    args = parser.parse_args()
    n, repeat = (100_000, 3) if args.quick else (args.cases, args.repeat)

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        durations = durations_frame(n)
        folder = publish(home, durations)
        build = time.perf_counter() - started
        path = str(folder / "durations.parquet")
        size_mb = Path(path).stat().st_size / 1e6
        form = "I-485"
        rows: list[tuple[str, float, float | None, str]] = []

        plain_read = timed(lambda: pl.read_parquet(path), repeat)
        duck = duckdb.connect()
        duck_form = timed(lambda: duck.sql(
            "SELECT * FROM read_parquet($path) WHERE form_type = $form",
            params={"path": path, "form": form}).pl(), repeat)
        rows.append(("plain polars read of durations.parquet", plain_read, None, "baseline"))
        rows.append((f"plain DuckDB read of one form ({form})", duck_form, None, "baseline"))
        cold = once(lambda: data.cached_parquet(path))
        rows.append(("dashboard read, cold (first visit after a publish)", cold, plain_read, ""))
        rows.append(("dashboard read, cached", timed(lambda: data.cached_parquet(path), repeat),
                     plain_read, "shared frame, no copy"))

        table = data.cached_parquet(path)
        selections = {
            f"processing times: {form}, all offices": figures.Selection(form),
            f"processing times: {form} at NBC": figures.Selection(form, "NBC"),
            f"processing times: {form}, filed 2025": figures.Selection(form, None, "2025"),
            "processing times: I-765 by current office": figures.Selection(
                "I-765", None, None, "current"),
        }
        for label, selection in selections.items():
            seconds = timed(lambda s=selection: queries.processing_view(table, s, K), repeat)
            rows.append((f"{label} (cache miss)", seconds, duck_form, ""))
        rows.append(("overview: typical waits of every form (cache miss)",
                     timed(lambda: queries.overview_view(table, K), repeat), plain_read, ""))
        for period in ("month", "quarter"):
            rows.append((f"trends by {period}: I-765 (cache miss)", timed(
                lambda p=period: queries.trend_view(table, figures.Selection("I-765"), K, p),
                repeat), duck_form, ""))
        facts = case_explainer.facts_from_typed(
            form, "NBC", AS_OF - timedelta(days=200), {"biometrics": AS_OF - timedelta(days=150)})
        rows.append(("my case: cases-like-mine estimate", timed(
            lambda: case_explainer.estimate_wait(table, facts, AS_OF, K), repeat), duck_form, ""))
        rows.append(("my case: whole answer card", timed(lambda: answer_card(
            table, form_type=form, office="NBC", received=AS_OF - timedelta(days=200),
            stage="biometrics", today=AS_OF, k=K), repeat), duck_form, ""))
        i765 = figures.select_cases(table, figures.Selection("I-765"))
        rows.append(("trends: is it getting worse, I-765, every office", timed(
            lambda: cohort_changes(i765, AS_OF, K), repeat), duck_form, ""))
        rows.append((f"processing times: do offices differ, {form}", timed(
            lambda: office_medians(figures.select_cases(table, figures.Selection(form)), K),
            repeat), duck_form, ""))
        hit = queries.cached_processing_view
        hit(str(folder), form, None, None, "intake", K)
        rows.append((f"processing times: {form} (cache hit)", timed(
            lambda: hit(str(folder), form, None, None, "intake", K), repeat), duck_form,
            "st.cache_data copy"))
        for page, query in (("overview", {}), ("processing_times", {"form": form}),
                            ("trends", {"form": "I-765"})):
            rows.append((f"whole page run (AppTest, warm): {page}",
                         page_run_seconds(home, page, query, repeat), None,
                         "script + figures + Altair specs"))

    print(f"{n:,} cases (durations.parquet {size_mb:.1f} MB); data built in {build:.1f} s; "
          f"median of {repeat} runs after a warm-up\n")
    print("| step | ours | baseline | ratio | notes |")
    print("|---|---:|---:|---:|---|")
    for label, seconds, baseline, note in rows:
        base = "" if baseline is None else ms(baseline)
        ratio = "" if baseline is None else f"{seconds / baseline:.2f}x"
        print(f"| {label} | {ms(seconds)} | {base} | {ratio} | {note} |")


if __name__ == "__main__":
    main()
