"""Polling at the real API's pace: one `timelines poll` of 300 receipts against a stand-in that
enforces spike arrest as Apigee does (10/s smoothed into 100 ms slots; a request less than
90 ms after the last accepted one is refused with 429) and answers after 250 ms.

The stand-in (`timelines emulator --rate 10 --tolerance-ms 10 --delay-ms 250 --synthetic 250`)
runs as its own process and records every request's arrival. Measured at the stand-in:
  * achieved rate / cap: requests per second from the first to the last arrival, over 10/s;
  * 429s (spike arrests) and the smallest gap between two arrivals;
and, for the whole command (fetch, parse, validate, store, publish), its wall time.
Baseline in the same run: the same poll with one request in flight (what polling did before).
Then against a stand-in at 5/s, stricter than the defaults' 10/s: the poll slows down on its
spike arrests; baseline, the same poll told the server's rate (USCIS_API_RATE_PER_SECOND=5).

Run alone:  uv run python -m bench.bench_polling [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import BenchRow, markdown_table

CAP = 10
STRICT = 5  # a stand-in stricter than the policy


def _exe() -> str:
    return shutil.which("timelines", path=str(Path(sys.executable).parent)) or "timelines"


def stand_in(extra: int, rate: int = CAP) -> tuple[subprocess.Popen[str], str]:
    """Start the spike-arresting 250 ms stand-in serving 50 + `extra` receipts."""
    proc = subprocess.Popen(
        [_exe(), "emulator", "--port", "0", "--rate", str(rate), "--tolerance-ms", "10",
         "--delay-ms", "250", "--quota", "1000000", "--synthetic", str(extra)],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    found = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
    if not found:
        proc.terminate()
        raise RuntimeError("the stand-in did not start")
    return proc, found.group(0)


def at_the_server(base_url: str) -> dict[str, Any]:
    """What the stand-in saw: rate over the cap, 429s, the smallest gap."""
    import httpx

    stats: dict[str, Any] = httpx.get(f"{base_url}/_emulator/stats").json()
    times = sorted(stats["arrivals"])
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {"n": len(times), "rate": (len(times) - 1) / (times[-1] - times[0]),
            "arrests": int(stats["by_status"].get("429", 0)), "min_gap_ms": 1000 * min(gaps),
            "under_90": sum(1 for g in gaps if g < 0.09)}


def poll_once(base_url: str, receipts: list[str], **env: str) -> tuple[dict[str, Any], float]:
    """Track the receipts in a fresh home and run `timelines poll` once; (summary, wall s)."""
    import httpx

    from pipeline.sources.uscis.registry import Registry, registry_path

    home = Path(tempfile.mkdtemp(prefix="bench-polling-"))
    try:
        with Registry(registry_path(home)) as registry:
            registry.add(receipts, now=datetime.now() - timedelta(seconds=1))
        httpx.post(f"{base_url}/_emulator/reset")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "USCIS_"))}
        base |= {"TIMELINES_HOME": str(home), "USCIS_API_BASE_URL": base_url,
                 "USCIS_CLIENT_ID": "bench", "USCIS_CLIENT_SECRET": "bench", **env}
        started = time.perf_counter()
        done = subprocess.run([_exe(), "poll", "--format", "json"], env=base, text=True,
                              capture_output=True, timeout=900)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(done.stderr[-2000:])
        return json.loads(done.stdout), wall
    finally:
        shutil.rmtree(home, ignore_errors=True)


def rows(quick: bool = False) -> list[BenchRow]:
    """Several in flight (the defaults) against one at a time, same receipts, same stand-in."""
    from pipeline.sources.uscis.emulator import load_sandbox_receipts, synthetic_receipts

    extra = 50 if quick else 250
    receipts = sorted({**load_sandbox_receipts(), **synthetic_receipts(extra)})
    proc, base_url = stand_in(extra)
    try:
        summary, wall = poll_once(base_url, receipts)
        ours = at_the_server(base_url)
        _, wall_one = poll_once(base_url, receipts[:60], USCIS_API_MAX_IN_FLIGHT="1")
        one = at_the_server(base_url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert summary["outcomes"]["ok"] == len(receipts), summary
    workload = (f"{len(receipts)} receipts, stand-in: 10/s in 100 ms slots (refuses < 90 ms), "
                "answers in 250 ms")
    # a server stricter than the policy: 5/s where the defaults say 10/s
    strict_receipts = receipts[:50 if quick else 100]
    proc, base_url = stand_in(extra, rate=STRICT)
    try:
        strict_summary, strict_wall = poll_once(base_url, strict_receipts)
        strict = at_the_server(base_url)
        _, told_wall = poll_once(base_url, strict_receipts, USCIS_API_RATE_PER_SECOND=str(STRICT))
        told = at_the_server(base_url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert strict_summary["outcomes"]["ok"] == len(strict_receipts), strict_summary
    return [
        BenchRow("Polling at 250 ms answers: achieved rate / cap (one `timelines poll`)", workload,
                 f"{ours['rate']:.2f}/s", baseline=f"1 in flight: {one['rate']:.2f}/s",
                 ratio=f"{ours['rate'] / CAP:.2f} of the cap",
                 notes=f"{ours['arrests']} x 429 (1 in flight: {one['arrests']}); smallest gap at "
                       f"the server {ours['min_gap_ms']:.1f} ms, {ours['under_90']} under 90 ms; "
                       f"{ours['n']} requests; whole command {wall:.1f} s "
                       f"(1 in flight, 60 receipts: {wall_one:.1f} s)"),
        BenchRow("Polling a server stricter than the policy (defaults: 10/s; server: 5/s)",
                 f"{len(strict_receipts)} receipts, stand-in: 5/s in 200 ms slots (refuses < 190 ms), "
                 "answers in 250 ms",
                 f"{strict['rate']:.2f}/s", baseline=f"told 5/s: {told['rate']:.2f}/s",
                 ratio=f"{strict['rate'] / told['rate']:.2f} of the told rate",
                 notes=f"{strict['arrests']} x 429 for {len(strict_receipts)} receipts (told 5/s: "
                       f"{told['arrests']}); every receipt ok; whole command {strict_wall:.1f} s "
                       f"(told 5/s: {told_wall:.1f} s)"),
    ]


def main() -> None:
    """Run alone and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    print(markdown_table(rows(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
