"""Run every benchmark module, print one markdown table and write it to bench/RESULTS.md.

    uv run python -m bench                 # everything, full sizes (several minutes)
    uv run python -m bench --quick         # small sizes: a smoke test of the harness
    uv run python -m bench --only ingest   # one module (repeatable)
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from datetime import datetime
from pathlib import Path
from types import ModuleType

from bench import BenchRow, machine, markdown_table, measure

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"


def bench_modules() -> list[str]:
    """Names of the bench modules present (bench_<name>.py), sorted."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def run_module(name: str, quick: bool) -> list[BenchRow]:
    """Rows of one module: from its rows() function, or from the table its script prints."""
    module = importlib.import_module(f"bench.{name}")
    label = name.removeprefix("bench_")
    rows_function = getattr(module, "rows", None)
    if callable(rows_function):
        return list(rows_function(quick))
    args = _script_args(module, quick)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent) + os.pathsep + env.get("PYTHONPATH", "")
    measured = measure([sys.executable, str(HERE / f"{name}.py"), *args], env=env, cwd=HERE.parent)
    if measured.returncode != 0:
        raise RuntimeError(f"exit {measured.returncode}: {measured.stderr.strip()[-2000:]}")
    return rows_from_markdown(label, measured.stdout)


def _script_args(module: ModuleType, quick: bool) -> list[str]:
    if not quick:
        return []
    given = getattr(module, "QUICK_ARGS", None)
    if given is not None:
        return list(given)
    source = Path(str(module.__file__)).read_text()
    return ["--quick"] if "--quick" in source else []


def rows_from_markdown(label: str, text: str) -> list[BenchRow]:
    """Turn printed tables (step | ours | baseline | ratio | notes...) into rows."""
    rows: list[BenchRow] = []
    header: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = cells
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        cells += [""] * (4 - len(cells))
        baseline = cells[2]
        if baseline and len(header) > 2 and header[2].lower() not in {"baseline", ""}:
            baseline = f"{baseline} ({header[2]})"
        rows.append(BenchRow(f"{label}: {cells[0]}", result=cells[1], baseline=baseline,
                             ratio=cells[3], notes="; ".join(c for c in cells[4:] if c)))
    return rows


def results_document(table: str, machine_line: str, quick: bool, started: datetime) -> str:
    """The text of bench/RESULTS.md."""
    mode = " (--quick: small sizes, not the published figures)" if quick else ""
    return (
        "# Benchmark results\n\n"
        f"Written by `uv run python -m bench`{mode} on {started:%Y-%m-%d %H:%M}.\n\n"
        f"Machine: {machine_line}.\n\n"
        f"{table}\n\n"
        "Wall time and CPU time are of a fresh process per measurement (interpreter start and "
        "imports included). Peak memory is the largest sum of resident memory of that process "
        "and every process it started, sampled every 20 ms (an upper bound). Baselines run in "
        "the same invocation on the same files. Timings on a shared machine vary with its load.\n"
    )


def main() -> None:
    """Run the selected modules and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only bench_NAME (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args()
    wanted = {f"bench_{n.removeprefix('bench_')}" for n in args.only}
    names = [n for n in bench_modules() if not wanted or n in wanted]
    if not names:
        parser.error(f"no bench module matches {sorted(wanted)}; present: {bench_modules()}")
    started = datetime.now()
    machine_line = machine()
    rows: list[BenchRow] = []
    failed = False
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(run_module(name, args.quick))
        except Exception as error:  # one broken module must not hide the others' figures
            failed = True
            traceback.print_exc()
            rows.append(BenchRow(name, result="FAILED", notes=str(error).splitlines()[0][:200]))
    table = markdown_table(rows)
    print(f"Machine: {machine_line}\n")
    print(table)
    if not args.no_write:
        RESULTS.write_text(results_document(table, machine_line, args.quick, started))
        print(f"\nwritten to {RESULTS.relative_to(HERE.parent)}", file=sys.stderr)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
