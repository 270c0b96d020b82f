"""Ingest throughput and peak memory against a raw DuckDB load of the same files.

For each size, synthetic histories are written once (cached in the temp folder) as JSON
lines in the two real formats. Then, each in a fresh process measured from outside:
  * raw: DuckDB's read_json of every file into a table (no parsing, no validation);
  * ours: the ingest job (parse, anonymize, validate, store in one transaction, publish)
    through the bulk prepare step (the default for JSON lines) and, for the smaller size,
    through the per-document path with its pool of processes, for comparison.
Run alone:  uv run python -m bench.bench_ingest [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import date
from pathlib import Path

from bench import BenchRow, markdown_table, mb, python_child
from pipeline.jobs.ingest import PARALLEL_MIN_BYTES, available_cores

SIZES = (100_000, 1_000_000)
QUICK_SIZES = (5_000, 20_000)
SEED = 7
AS_OF = date(2025, 6, 1)
AIM_RATIO, AIM_BYTES = 2.0, 2**30  # at most 2x the raw load; 1M histories under 1 GB

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
    """Measure raw load and ingest for each size."""
    results: list[BenchRow] = []
    sizes = QUICK_SIZES if quick else SIZES
    for n in sizes:
        data = sample_files(n)
        size_mb = sum(f.stat().st_size for f in data.glob("*.jsonl")) / 2**20
        workload = f"{n:,} histories ({size_mb:,.0f} MB JSONL)"
        bench_root().mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="ingest-", dir=bench_root()))
        try:
            raw = python_child(RAW_LOAD.format(db=str(scratch / "raw.duckdb"),
                                               pattern=str(data / "*.jsonl")))
            assert int(raw.stdout.strip().splitlines()[-1]) == n, raw.stdout
            results.append(BenchRow(
                "Raw DuckDB load (read_json into a table)", workload, _rate(raw.wall_s, n),
                peak_memory=mb(raw.peak_rss_bytes), notes=f"CPU {raw.cpu_s:.0f} s",
            ))
            pooled = sum(f.stat().st_size for f in data.glob("*.jsonl")) >= PARALLEL_MIN_BYTES
            configs = [("True", "None", "bulk: DuckDB reads, same rules")]
            if n == sizes[0]:
                workers = f"{available_cores()} worker processes" if pooled else "one process"
                configs.append(("False", "None", f"per document, {workers}, for comparison"))
            for bulk, workers, label in configs:
                home = scratch / f"home-{bulk}"
                ours = python_child(INGEST.format(home=str(home), data=str(data), workers=workers,
                                                  bulk=bulk))
                report = json.loads(ours.stdout.strip().splitlines()[-1])
                counts = {k: report[k] for k in ("read", "stored", "rejected")}
                assert counts == {"read": n, "stored": n, "rejected": 0}, counts
                notes = (f"CPU {ours.cpu_s:.0f} s, {ours.wall_s / n * 1e6:.0f} µs/history; of the wall "
                         f"time: imports {report['imports_s']:.1f} s, ingest job "
                         f"{report['ingest_s']:.1f} s ({report['ingest_s'] / raw.wall_s:.1f}x the raw "
                         f"load), publish {report['publish_s']:.1f} s")
                if bulk == "True":
                    met = ours.wall_s <= AIM_RATIO * raw.wall_s and (
                        n < 1_000_000 or ours.peak_rss_bytes < AIM_BYTES)
                    notes += "; aim (<= 2x raw, < 1 GB at 1M) " + ("met" if met else "NOT met")
                results.append(BenchRow(
                    f"Ingest: parse, anonymize, validate, store, publish ({label})", workload,
                    _rate(ours.wall_s, n), baseline=f"{raw.wall_s:.1f} s",
                    ratio=f"{ours.wall_s / raw.wall_s:.1f}x time, "
                          f"{ours.peak_rss_bytes / max(raw.peak_rss_bytes, 1):.1f}x memory",
                    peak_memory=mb(ours.peak_rss_bytes), notes=notes,
                ))
                shutil.rmtree(home, ignore_errors=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return results


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
