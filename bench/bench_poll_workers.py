"""Polling past one machine: a Prefect server, one process work pool, two workers with their own
TIMELINES_HOME scratch folders, one registry and one request budget shared through Postgres
(TIMELINES_REGISTRY_URL), polling 300 receipts against the spike-arresting 250 ms stand-in.

Two runs of the `poll` deployment (150 receipts each) go to the pool at once; each worker takes
one. Counted at the stand-in: the combined rate over the 10/s cap, 429s, the smallest gap
between two requests (aim: never under 90 ms), and whether any receipt was asked twice.

Run alone:  uv run python -m bench.bench_poll_workers     (needs Postgres: apt-get install postgresql)
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from bench import BenchRow, markdown_table
from bench.bench_polling import CAP, at_the_server, stand_in

ROOT = Path(__file__).resolve().parent.parent
POOL = "bench-poll-pool"


def _bin(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(api_url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the Prefect server did not start")


def rows(quick: bool = False) -> list[BenchRow]:
    """Two workers on one pool, one shared registry and budget; 300 receipts."""
    from pipeline.sources.uscis.emulator import load_sandbox_receipts, synthetic_receipts
    from pipeline.sources.uscis.registry import Registry
    from pipeline.sources.uscis.shared import PostgresConnection
    from tests.support.postgres import temporary_postgres

    extra = 250
    receipts = sorted({**load_sandbox_receipts(), **synthetic_receipts(extra)})
    scratch = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TIMELINES_", "USCIS_", "PREFECT_"))}
    prefect_env = clean | {"PREFECT_HOME": str(scratch / "prefect"), "PREFECT_API_URL": api_url,
                           "PREFECT_SERVER_API_PORT": str(port)}
    processes: list[subprocess.Popen[str]] = []
    proc, base_url = stand_in(extra)
    processes.append(proc)
    try:
        with temporary_postgres() as registry_url:
            with Registry(connection=PostgresConnection(registry_url)) as registry:
                registry.add(receipts, now=datetime.now() - timedelta(seconds=1))
            processes.append(subprocess.Popen(
                [_bin("prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                env=prefect_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))
            _wait_healthy(api_url)
            subprocess.run([_bin("prefect"), "work-pool", "create", POOL, "--type", "process"],
                           env=prefect_env, check=True, capture_output=True)
            deploy = (
                "from flows.poll import poll_flow\n"
                f"poll_flow.from_source(source={str(ROOT)!r}, entrypoint='flows/poll.py:poll_flow')"
                f".to_deployment(name='two-workers', work_pool_name={POOL!r}).apply()\n"
            )
            deployed = subprocess.run([sys.executable, "-c", deploy], env=prefect_env, cwd=ROOT,
                                      capture_output=True, text=True)
            if deployed.returncode != 0:
                raise RuntimeError(f"deploying the poll flow failed: {deployed.stderr[-3000:]}")
            shared = {"TIMELINES_REGISTRY_URL": registry_url, "USCIS_API_BASE_URL": base_url,
                      "USCIS_CLIENT_ID": "bench", "USCIS_CLIENT_SECRET": "bench",
                      "USCIS_API_DAILY_QUOTA": "1000000",
                      "TIMELINES_PSEUDONYM_KEY": secrets.token_hex(32),
                      "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "5"}
            for name in ("worker-a", "worker-b"):
                home = scratch / name
                home.mkdir()
                processes.append(subprocess.Popen(
                    [_bin("prefect"), "worker", "start", "--pool", POOL, "--name", name,
                     "--limit", "1"],
                    env=prefect_env | shared | {"TIMELINES_HOME": str(home)}, cwd=ROOT,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True))
            time.sleep(5)  # both workers polling the pool
            httpx.post(f"{base_url}/_emulator/reset")
            submit = (
                "from prefect.deployments import run_deployment\n"
                "import sys\n"
                "runs = [run_deployment('poll/two-workers', parameters={'limit': 150}, timeout=0)"
                " for _ in range(2)]\n"
                "from prefect.client.orchestration import get_client\n"
                "import time\n"
                "with get_client(sync_client=True) as c:\n"
                "    while True:\n"
                "        states = [c.read_flow_run(r.id).state for r in runs]\n"
                "        if all(s is not None and s.is_final() for s in states): break\n"
                "        time.sleep(1)\n"
                "    names = {c.read_flow_run(r.id).work_queue_name for r in runs}\n"
                "print(' '.join(s.name for s in states))\n"
            )
            done = subprocess.run([sys.executable, "-c", submit], env=prefect_env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=900)
            if done.returncode != 0 or done.stdout.split() != ["Completed", "Completed"]:
                raise RuntimeError(f"the poll runs did not complete: {done.stdout} {done.stderr}")
            seen = at_the_server(base_url)
            asked = httpx.get(f"{base_url}/_emulator/stats").json()["by_receipt"]
            stored = {}
            for name in ("worker-a", "worker-b"):
                import duckdb

                con = duckdb.connect(str(scratch / name / "timelines.duckdb"), read_only=True)
                row = con.execute("SELECT count(*) FROM cases").fetchone()
                con.close()
                stored[name] = int(row[0]) if row else 0
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    twice = sum(1 for n in asked.values() if n > 1)
    return [BenchRow(
        "Polling, 2 Prefect workers on one pool, shared Postgres registry and budget: "
        "combined rate / cap", f"{len(receipts)} receipts, stand-in as above",
        f"{seen['rate']:.2f}/s", baseline=f"cap {CAP}/s", ratio=f"{seen['rate'] / CAP:.2f} of the cap",
        notes=f"{seen['arrests']} x 429; smallest gap at the server {seen['min_gap_ms']:.1f} ms, "
              f"{seen['under_90']} under 90 ms; stored {stored['worker-a']} + "
              f"{stored['worker-b']} cases in the two scratch homes; {twice} receipts asked twice")]


def main() -> None:
    """Run alone and print the table."""
    print(markdown_table(rows()))


if __name__ == "__main__":
    main()
