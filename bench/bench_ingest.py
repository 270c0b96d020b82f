"""Ingest throughput and peak memory against a raw DuckDB load of the same files.

For each size, synthetic histories are written once (cached in the temp folder) as JSON
lines in the two real formats. Then, each in a fresh process measured from outside:
  * raw: DuckDB's read_json of every file into a table (no parsing, no validation);
  * ours: the ingest job (parse, anonymize, validate, store in one transaction, publish)
    through the bulk prepare step (the default for JSON lines) and, for the smaller size,
    through the per-document path with its pool of processes, for comparison.
The raw load and the bulk ingest alternate PAIRS times; the ratio reported is the median of
the pairs' ratios (each pair measured side by side in time), the peak the largest seen.
Run alone:  uv run python -m bench.bench_ingest [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
from datetime import date
from pathlib import Path

from bench import BenchRow, Measured, markdown_table, mb, python_child
from pipeline.jobs.ingest import PARALLEL_MIN_BYTES, available_cores

SIZES = (100_000, 1_000_000)
QUICK_SIZES = (5_000, 20_000)
SEED = 7
AS_OF = date(2025, 6, 1)
AIM_RATIO, AIM_BYTES = 2.0, 2**30  # at most 2x the raw load; 1M histories under 1 GB
# Raw load and ingest alternate this many times: on a shared machine the speed drifts by tens
# of percent within minutes, and one run of each measured minutes apart compares two machines.
PAIRS = 3

RAW_LOAD = """
import duckdb
con = duckdb.connect({db!r})
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE raw AS SELECT * FROM read_json('{pattern}', "
            "format = 'newline_delimited', union_by_name = true)")
print(con.execute("SELECT count(*) FROM raw").fetchone()[0])
"""

INGEST = """
import time
started = time.perf_counter()
import json
from pathlib import Path
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.settings import Settings
imported = time.perf_counter()
settings = Settings(home=Path({home!r}))
result = ingest_job.ingest_files(settings, ingest_job.discover_inputs([Path({data!r})]),
                                 workers={workers}, bulk={bulk})
ingested = time.perf_counter()
refresh_job.publish(settings)
print(json.dumps({{"read": result.n_read, "stored": result.n_stored,
                  "rejected": result.n_rejected, "imports_s": imported - started,
                  "ingest_s": ingested - imported, "publish_s": time.perf_counter() - ingested}}))
"""


def bench_root() -> Path:
    """Where samples are cached between runs."""
    return Path(tempfile.gettempdir()) / "timelines-bench"


def sample_files(n: int) -> Path:
    """A folder of n synthetic histories, written once and reused."""
    from pipeline.sources.sample import write_sample

    folder = bench_root() / f"sample-{n}-seed{SEED}-{AS_OF:%Y%m%d}"
    done = folder / ".complete"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_sample(folder, n, seed=SEED, as_of=AS_OF)
        done.write_text("ok")
    return folder


def rows(quick: bool = False) -> list[BenchRow]:
    """Measure raw load and bulk ingest for each size, alternating them PAIRS times."""
    results: list[BenchRow] = []
    sizes = QUICK_SIZES if quick else SIZES
    pairs = 1 if quick else PAIRS
    for n in sizes:
        data = sample_files(n)
        size_mb = sum(f.stat().st_size for f in data.glob("*.jsonl")) / 2**20
        workload = f"{n:,} histories ({size_mb:,.0f} MB JSONL)"
        bench_root().mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="ingest-", dir=bench_root()))
        try:
            raws, bulks = [], []
            for pair in range(pairs):
                raws.append(_raw(data, scratch / f"raw-{pair}.duckdb", n))
                bulks.append(_ingest(data, scratch / f"home-bulk-{pair}", n, bulk=True))
            raw = _median_run(raws)
            raw_peak = max(r.peak_rss_bytes for r in raws)
            ratios = sorted(b.wall_s / r.wall_s for b, r in zip(bulks, raws, strict=True))
            results.append(BenchRow(
                "Raw DuckDB load (read_json into a table)", workload, _rate(raw.wall_s, n),
                peak_memory=mb(raw_peak),
                notes=f"CPU {raw.cpu_s:.0f} s; median of {pairs} runs "
                      f"({', '.join(f'{r.wall_s:.1f}' for r in raws)} s)",
            ))
            ours = _median_run(bulks)
            report = _report(ours)
            ratio = statistics.median(ratios)
            peak = max(b.peak_rss_bytes for b in bulks)
            met = ratio <= AIM_RATIO and (n < 1_000_000 or peak < AIM_BYTES)
            results.append(BenchRow(
                "Ingest: parse, anonymize, validate, store, publish (bulk: DuckDB reads, same rules)",
                workload, _rate(ours.wall_s, n), baseline=f"{raw.wall_s:.1f} s",
                ratio=f"{ratio:.2f}x time (runs: {', '.join(f'{r:.2f}' for r in ratios)}), "
                      f"{peak / max(raw_peak, 1):.1f}x memory",
                peak_memory=mb(peak),
                notes=_notes(ours, report, raw, n) + f"; each run alternates with a raw load, the "
                      f"ratio is the median of the {pairs} pairs and the peak the largest of the runs"
                      "; aim (<= 2x raw, < 1 GB at 1M) " + ("met" if met else "NOT met"),
            ))
            if n == sizes[0]:
                pooled = sum(f.stat().st_size for f in data.glob("*.jsonl")) >= PARALLEL_MIN_BYTES
                workers = f"{available_cores()} worker processes" if pooled else "one process"
                single = _ingest(data, scratch / "home-documents", n, bulk=False)
                results.append(BenchRow(
                    f"Ingest: parse, anonymize, validate, store, publish (per document, {workers}, "
                    "for comparison)", workload, _rate(single.wall_s, n), baseline=f"{raw.wall_s:.1f} s",
                    ratio=f"{single.wall_s / raw.wall_s:.1f}x time, "
                          f"{single.peak_rss_bytes / max(raw.peak_rss_bytes, 1):.1f}x memory",
                    peak_memory=mb(single.peak_rss_bytes), notes=_notes(single, _report(single), raw, n),
                ))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return results


def _raw(data: Path, db: Path, n: int) -> Measured:
    raw = python_child(RAW_LOAD.format(db=str(db), pattern=str(data / "*.jsonl")))
    assert int(raw.stdout.strip().splitlines()[-1]) == n, raw.stdout
    db.unlink(missing_ok=True)
    return raw


def _ingest(data: Path, home: Path, n: int, bulk: bool) -> Measured:
    ours = python_child(INGEST.format(home=str(home), data=str(data), workers="None", bulk=str(bulk)))
    counts = {k: _report(ours)[k] for k in ("read", "stored", "rejected")}
    assert counts == {"read": n, "stored": n, "rejected": 0}, counts
    shutil.rmtree(home, ignore_errors=True)
    return ours


def _report(run: Measured) -> dict[str, float]:
    report: dict[str, float] = json.loads(run.stdout.strip().splitlines()[-1])
    return report


def _median_run(runs: list[Measured]) -> Measured:
    """The run of median wall time (the lower middle one of an even count)."""
    return sorted(runs, key=lambda r: r.wall_s)[(len(runs) - 1) // 2]


def _notes(ours: Measured, report: dict[str, float], raw: Measured, n: int) -> str:
    return (f"CPU {ours.cpu_s:.0f} s, {ours.wall_s / n * 1e6:.0f} µs/history; of the wall "
            f"time: imports {report['imports_s']:.1f} s, ingest job {report['ingest_s']:.1f} s "
            f"({report['ingest_s'] / raw.wall_s:.1f}x the raw load), publish {report['publish_s']:.1f} s")


def _rate(seconds: float, n: int) -> str:
    return f"{seconds:.1f} s ({n / seconds:,.0f} histories/s)"


def main() -> None:
    """Run alone and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args()
    print(markdown_table(rows(args.quick)))


if __name__ == "__main__":
    main()
