"""Polling sharded across processes: two `timelines poll` processes at once against the
emulator capped at 5 requests/s (the sandbox's rate), sharing one rate limit through the SQLite
limiter, compared with one process polling the same receipts; each twice. Counted at the
emulator per second, leaving out each run's first and last (partial) second.

Run alone:  uv run python -m bench.bench_poll_shards
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench import BenchRow, markdown_table

CAP = 5
ROUNDS = 2


def _exe() -> str:
    return shutil.which("timelines", path=str(Path(sys.executable).parent)) or "timelines"


def _emulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([_exe(), "emulator", "--port", "0", "--rate", str(CAP),
                             "--quota", "1000000"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    found = re.search(r"http://127\.0\.0\.1:\d+", proc.stdout.readline())
    if not found:
        proc.terminate()
        raise RuntimeError("the emulator did not start")
    return proc, found.group(0)


def _poll(home: Path, base_url: str, processes: int, limit: int) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "USCIS_"))}
    env |= {"TIMELINES_HOME": str(home), "USCIS_API_BASE_URL": base_url, "USCIS_CLIENT_ID": "b",
            "USCIS_CLIENT_SECRET": "b", "USCIS_API_RATE_PER_SECOND": str(CAP),
            "USCIS_API_DAILY_QUOTA": "1000000"}
    command = [_exe(), "poll", "--force", "--limit", str(limit), "--format", "json"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(processes)]
    outputs = [run.communicate(timeout=600) for run in runs]
    if any(run.returncode for run in runs):
        raise RuntimeError(f"a poll failed: {[err for _, err in outputs]}")
    return [json.loads(out) for out, _ in outputs]


def _rounds(home: Path, base_url: str, processes: int, limit: int) -> dict[str, Any]:
    """Poll ROUNDS times with `processes` at once; the traffic the emulator counted."""
    import httpx

    inner: list[int] = []
    peak, arrests, per_receipt, ok = 0, 0, set(), 0
    for _ in range(ROUNDS):
        httpx.post(f"{base_url}/_emulator/reset")
        ok += sum(s["outcomes"]["ok"] for s in _poll(home, base_url, processes, limit))
        stats: dict[str, Any] = httpx.get(f"{base_url}/_emulator/stats").json()
        per_second = {int(k): v for k, v in stats["requests_per_second"].items()}
        inner += [per_second[s] for s in sorted(per_second)[1:-1]]  # edges are partial
        peak = max(peak, stats["max_requests_per_second"])
        arrests += int(stats["by_status"].get("429", 0))
        per_receipt |= set(stats["by_receipt"].values())
    return {"rate": sum(inner) / max(len(inner), 1), "max": peak, "arrests": arrests,
            "per_receipt": per_receipt, "ok": ok}


def rows(quick: bool = False) -> list[BenchRow]:
    """One process, then two processes sharing the limiter, on the 50 sandbox receipts."""
    from pipeline.sources.uscis.emulator import load_sandbox_receipts
    from pipeline.sources.uscis.registry import Registry, registry_path

    receipts = sorted(load_sandbox_receipts())
    proc, base_url = _emulator()
    home = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        with Registry(registry_path(home)) as registry:
            registry.add(receipts, now=datetime.now() - timedelta(seconds=1))
        alone = _rounds(home, base_url, 1, len(receipts))
        shared = _rounds(home, base_url, 2, len(receipts) // 2)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
    assert shared["ok"] == alone["ok"] == ROUNDS * len(receipts), (alone, shared)
    workload = f"{len(receipts)} receipts x {ROUNDS}, emulator capped at {CAP}/s"
    return [
        BenchRow("Polling, 2 processes sharing one limiter: combined rate", workload,
                 f"{shared['rate']:.2f}/s", baseline=f"1 process: {alone['rate']:.2f}/s",
                 ratio=f"{shared['rate'] / CAP:.2f} of the cap",
                 notes=f"at most {shared['max']} requests in any second (cap {CAP}); "
                       f"{shared['arrests']} spike arrests (429); every receipt asked "
                       f"{'once' if shared['per_receipt'] == {1} else shared['per_receipt']} "
                       f"per round; {ROUNDS} rounds"),
    ]


def main() -> None:
    """Run alone and print the table."""
    print(markdown_table(rows()))


if __name__ == "__main__":
    main()
