"""CSV ingest (timelines ingest FILE.csv --as-of): throughput, peak memory, row accounting.

A community-style sheet (office names, m/d/yy, '.' for empty, categories, processing, a few
bad rows) of N rows is written once. Then, each in a fresh process measured from outside:
  * raw: DuckDB's read_csv of the file into a table (no parsing of values, no validation);
  * ours: the ingest job's table path (read, anonymize, merge, validate, store in one
    transaction), streamed 20,000 rows at a time.
Peak memory is measured at two sizes: streaming means it must not grow with the file.
Run alone:  uv run python -m bench.bench_csv_ingest [--quick]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
from pathlib import Path

from bench import BenchRow, markdown_table, mb, python_child

SIZES = (100_000, 300_000)
QUICK_SIZES = (5_000, 20_000)
OFFICES = ("Nebraska Service Center", "Dallas", "TSC", "lin", "Texas", "NSC")
CATEGORIES = ("EB2", "EB-2", "E21", "NIW", "EB-1A", "E13", "EB3", ".")

RAW_LOAD = """
import duckdb
con = duckdb.connect({db!r})
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE raw AS SELECT * FROM read_csv('{path}', all_varchar = true)")
print(con.execute("SELECT count(*) FROM raw").fetchone()[0])
"""

INGEST = """
import json
from datetime import date
from pathlib import Path
from pipeline.jobs import ingest as ingest_job
from pipeline.settings import Settings
settings = Settings(home=Path({home!r}))
r = ingest_job.ingest_files(settings, [Path({path!r})], as_of=date(2014, 6, 30),
                            columns={{"pd": None}})
print(json.dumps({{"read": r.rows_read, "stored": r.rows_stored,
                  "quarantined": r.rows_quarantined, "refused": r.rows_refused}}))
"""


def write_sheet(path: Path, n: int, seed: int = 11) -> None:
    """A sheet of n rows; about 1% refused (unknown office) and 0.5% quarantined."""
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        handle.write("User,Form,Service Center,Category,Processing,PD,Receipt Date,Approved,Notes\r\n")
        for i in range(n):
            received = (1 + rng.randrange(12), 1 + rng.randrange(28), 10 + rng.randrange(3))
            premium = rng.random() < 0.2
            days = rng.randrange(5, 15) if premium else rng.randrange(60, 400)
            office = "Nowhere" if i % 100 == 42 else rng.choice(OFFICES)
            approved = "."
            if rng.random() < 0.8:
                month = received[0] + days // 30
                year = received[2] + (month - 1) // 12
                approved = f"{(month - 1) % 12 + 1}/{1 + rng.randrange(28)}/{year}"
            if i % 200 == 7:
                approved = f"1/1/{received[2] - 1}"  # decided before receipt: quarantined
            handle.write(
                f"user{i},I-140,{office},{rng.choice(CATEGORIES)},"
                f"{'premium' if premium else 'regular'},.,{received[0]}/{received[1]}/{received[2]},"
                f"{approved},note {i}\r\n"
            )


def rows(quick: bool = False) -> list[BenchRow]:
    """Measure the raw load and our ingest for each size."""
    results: list[BenchRow] = []
    root = Path(tempfile.mkdtemp(prefix="csv-ingest-"))
    try:
        for n in QUICK_SIZES if quick else SIZES:
            sheet = root / f"sheet-{n}.csv"
            write_sheet(sheet, n)
            workload = f"{n:,} rows ({sheet.stat().st_size / 2**20:,.1f} MB CSV)"
            raw = python_child(RAW_LOAD.format(db=str(root / f"raw-{n}.duckdb"), path=str(sheet)))
            assert int(raw.stdout.strip().splitlines()[-1]) == n, raw.stdout
            ours = python_child(INGEST.format(home=str(root / f"home-{n}"), path=str(sheet)))
            counts = json.loads(ours.stdout.strip().splitlines()[-1])
            adds_up = counts["read"] == counts["stored"] + counts["quarantined"] + counts["refused"] == n
            results.append(BenchRow(
                "CSV ingest --as-of (read, anonymize, merge, validate, store)", workload,
                f"{ours.wall_s:.1f} s ({n / ours.wall_s:,.0f} rows/s)",
                baseline=f"raw read_csv {raw.wall_s:.1f} s, {mb(raw.peak_rss_bytes)}",
                ratio=f"{ours.wall_s / raw.wall_s:.1f}x time, "
                      f"{ours.peak_rss_bytes / max(raw.peak_rss_bytes, 1):.1f}x memory",
                peak_memory=mb(ours.peak_rss_bytes),
                notes=(f"rows read {counts['read']:,} = stored {counts['stored']:,} + quarantined "
                       f"{counts['quarantined']:,} + refused {counts['refused']:,}"
                       f" ({'adds up' if adds_up else 'DOES NOT ADD UP'})"),
            ))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def main() -> None:
    """Run alone and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    print(markdown_table(rows(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
