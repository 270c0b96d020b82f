"""The pseudonym key file when several processes start at once on a fresh home (two polls, a
poll and the dashboard): they all end up with the one key, and none sees a half-written file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pipeline.prepare.anonymize import load_key

ROUNDS, PROCESSES = 20, 6
# Each process waits for the same start time of every round, then asks for that round's key.
WORKER = r"""
import hashlib, sys, time
from pathlib import Path
from pipeline.prepare.anonymize import load_key
folder, rounds = Path(sys.argv[1]), int(sys.argv[2])
print("ready", flush=True)
start = float(sys.stdin.readline())
for r in range(rounds):
    while time.time() < start + r * 0.05:
        pass
    try:
        key = load_key(folder / f"home-{r}" / "pseudonym.key")
        print(r, hashlib.sha256(key.secret).hexdigest(), flush=True)
    except ValueError as error:
        print(r, "refused:", error, flush=True)
"""


def test_processes_starting_at_once_on_a_fresh_home_share_one_whole_key(tmp_path: Path) -> None:
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(ROUNDS)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
               for _ in range(PROCESSES)]
    for worker in workers:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
    start = time.time() + 0.5
    for worker in workers:  # every one gets the start time before any is waited for
        assert worker.stdin is not None
        worker.stdin.write(f"{start}\n")
        worker.stdin.flush()
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]

    keys: dict[str, set[str]] = {}
    for output in outputs:
        for line in output.splitlines():
            round_, answer = line.split(" ", 1)
            keys.setdefault(round_, set()).add(answer)
    refused = sorted({a for answers in keys.values() for a in answers if a.startswith("refused")})
    assert refused == []
    assert len(keys) == ROUNDS and all(len(answers) == 1 for answers in keys.values())
    for r in range(ROUNDS):  # the key file is whole, private, and alone in its folder
        home = tmp_path / f"home-{r}"
        assert [p.name for p in home.iterdir()] == ["pseudonym.key"]
        assert (home / "pseudonym.key").stat().st_mode & 0o777 == 0o600
        assert len(load_key(home / "pseudonym.key").secret) == 64
