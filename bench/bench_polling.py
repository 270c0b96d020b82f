"""Polling against the sandbox emulator capped at 10 requests/s: achieved rate, 429s, CPU.

The emulator runs as its own process (`timelines emulator --rate 10`), so the CPU measured
here is the poller's alone. One poll run (`pipeline.jobs.poll.run_poll`, in this process) asks
about the 50 sandbox receipts, then the fetch step alone asks about them again `--rounds`
times through ONE client and the shared SQLite rate limiter. Measured:
  * achieved rate / cap: case-status requests per second over the fetch, counted at the server;
  * self-caused 429s: spike arrests the server had to send (aim 0);
  * client CPU per request (fetch only) and per receipt (the whole run: fetch, parse, store).
Run:  uv run python bench/bench_polling.py [--quick]   (prints: step, ours, baseline, ratio, notes)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

CAP = 10
AIM_RATIO = 0.95


def _start_emulator() -> tuple[subprocess.Popen[str], str]:
    exe = shutil.which("timelines", path=str(Path(sys.executable).parent)) or "timelines"
    proc = subprocess.Popen(
        [exe, "emulator", "--port", "0", "--rate", str(CAP), "--quota", "1000000"],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    found = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
    if not found:
        proc.terminate()
        raise RuntimeError("the emulator did not start")
    return proc, found.group(0)


def measure(quick: bool) -> list[tuple[str, str, str, str, str]]:
    """Measure polling against the emulator: (step, ours, baseline, ratio, notes) rows."""
    from pipeline.jobs.poll import FetchProgress, PollBatch, fetch_answers, run_poll
    from pipeline.settings import Settings
    from pipeline.sources.uscis.client import ApiSettings, Secret
    from pipeline.sources.uscis.emulator import load_sandbox_receipts
    from pipeline.sources.uscis.registry import Registry, registry_path

    rounds = 1 if quick else 4
    receipts = sorted(load_sandbox_receipts())
    proc, base_url = _start_emulator()
    home = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    try:
        settings = Settings(home=home)
        api = ApiSettings(Secret("bench"), Secret("bench"), base_url=base_url,
                          requests_per_second=CAP, daily_quota=1_000_000)
        with Registry(registry_path(settings.ensure_home())) as registry:
            registry.add(receipts, now=datetime.now())
        cpu, wall = time.process_time(), time.perf_counter()
        summary = run_poll(settings, api)
        run_cpu, run_wall = time.process_time() - cpu, time.perf_counter() - wall
        assert summary.outcomes["ok"] == len(receipts), summary

        httpx.post(f"{base_url}/_emulator/reset")
        batch = PollBatch("bench", receipts, len(receipts), datetime.now())
        cpu = time.process_time()
        for _ in range(rounds):
            fetch_answers(settings, api, batch, FetchProgress())
        fetch_cpu = time.process_time() - cpu
        stats: dict[str, Any] = httpx.get(f"{base_url}/_emulator/stats").json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)

    per_second = {int(k): v for k, v in stats["requests_per_second"].items()}
    seconds = sorted(per_second)
    inner = seconds[1:-1]  # the first and last second are partial
    achieved = sum(per_second[s] for s in inner) / len(inner)
    n_requests = stats["total_requests"]
    arrests = int(stats["by_status"].get("429", 0))
    return [
        (f"achieved rate / cap ({n_requests} requests)", f"{achieved:.2f}/s", f"{CAP}/s",
         f"{achieved / CAP:.2f}",
         f"aim >= {AIM_RATIO}; at most {stats['max_requests_per_second']} in any second"),
        ("self-caused 429s", str(arrests), "0", "", "aim 0"),
        ("client CPU per request (fetch only)", f"{1000 * fetch_cpu / n_requests:.2f} ms", "",
         "", ""),
        (f"whole poll run, CPU per receipt ({len(receipts)} receipts)",
         f"{1000 * run_cpu / len(receipts):.1f} ms", "", "",
         f"fetch, parse, validate, store, publish: {run_wall:.1f} s wall"),
    ]


def main() -> None:
    """Print the results as a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    os.environ.pop("TIMELINES_HOME", None)
    print("| step | ours | baseline | ratio | notes |")
    print("|---|---:|---:|---:|---|")
    for row in measure(args.quick):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
