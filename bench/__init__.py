"""Benchmarks: `uv run python -m bench` runs every bench/bench_*.py and writes bench/RESULTS.md.

A bench module either defines `rows(quick: bool) -> list[BenchRow]`, or is run as a script
(`python bench/bench_x.py`) that prints a markdown table whose columns are, in order:
step, ours, baseline, ratio (further columns become notes). Heavy work runs in child
processes measured from outside: wall time, CPU time and the peak memory of the child and
everything it starts.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class BenchRow:
    """One line of the results table; every value is already formatted for people."""

    benchmark: str
    workload: str = ""
    result: str = ""
    baseline: str = ""
    ratio: str = ""
    peak_memory: str = ""
    notes: str = ""


COLUMNS = ("Benchmark", "Workload", "Result", "Baseline (same run)", "Ratio", "Peak memory", "Notes")


def markdown_table(rows: Sequence[BenchRow]) -> str:
    """The rows as one markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 2 + "---:|" * 4 + "---|"]
    for row in rows:
        cells = (row.benchmark, row.workload, row.result, row.baseline, row.ratio,
                 row.peak_memory, row.notes)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Measured:
    """What one child process took."""

    wall_s: float
    cpu_s: float
    peak_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str


def measure(argv: Sequence[str], env: Mapping[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 3600) -> Measured:
    """Run a command; return its wall time, CPU time (it and its children) and peak memory.

    Peak memory is the largest sum of resident memory over the child and all its
    descendants, sampled every 20 ms from /proc (Linux; an upper bound, since pages shared
    between processes count once per process).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=dict(env) if env is not None else None, cwd=cwd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(child.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    finally:
        done.set()
        sampler.join()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, cpu, peak[0], child.returncode, stdout, stderr)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 once it has exited)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * PAGE_SIZE
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    stack.extend(int(p) for p in handle.read().split())
        except (OSError, ValueError):
            continue  # gone meanwhile
    return total


def python_child(code: str, env: Mapping[str, str] | None = None) -> Measured:
    """Run Python code in a fresh interpreter of this environment and measure it."""
    full_env = dict(os.environ if env is None else env)
    root = str(Path(__file__).resolve().parent.parent)
    full_env["PYTHONPATH"] = root + os.pathsep + full_env.get("PYTHONPATH", "")
    measured = measure([sys.executable, "-c", code], env=full_env)
    if measured.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({measured.returncode}):\n{measured.stderr[-3000:]}")
    return measured


def machine() -> str:
    """A one-line description of this machine: cores, memory, CPU model, load."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = os.sysconf("SC_PHYS_PAGES") * PAGE_SIZE / 2**30
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{cores} cores (nproc), {memory:.0f} GB memory, {model}; "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}; "
            f"load average {load:.1f} when the run started")


def mb(n_bytes: float) -> str:
    """Bytes as megabytes (or gigabytes past 2 GB)."""
    return f"{n_bytes / 2**30:.2f} GB" if n_bytes >= 2 * 2**30 else f"{n_bytes / 2**20:.0f} MB"
