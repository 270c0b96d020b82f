"""Faults an operator will meet: a killed ingest, a held database file, damaged inbox files,
submissions arriving mid-ingest, a flaky API. Real processes, real files, real HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.publish.reader import current_snapshot
from pipeline.settings import Secret, Settings
from pipeline.sources.sample import write_sample
from tests.jobs.test_ingest_store import table_contents
from tests.support.cli import timelines_exe

KEY = "f" * 64
AS_OF = date(2025, 6, 1)


def child_env(home: Path, *, shared_key: bool = True) -> dict[str, str]:
    """The environment of a child process: this test's home (and pseudonym key), no Prefect."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "PREFECT_API"))}
    env["TIMELINES_HOME"] = str(home)
    if shared_key:
        env["TIMELINES_PSEUDONYM_KEY"] = KEY
    return env


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def open_files(pid: int) -> set[str]:
    """Names of the files a process has open now (Linux /proc)."""
    names = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                names.add(Path(os.readlink(f"/proc/{pid}/fd/{fd}")).name)
            except OSError:
                continue
    except OSError:
        pass
    return names


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                for child in map(int, children):
                    if child not in found:
                        found.add(child)
                        stack.append(child)
        except OSError:
            continue
    return found


def sleeping_for(pid: int, seconds: float) -> bool:
    """True once a process has slept (no CPU used, not runnable) for `seconds` in a row."""
    def sample() -> tuple[str, int]:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[0], int(fields[11]) + int(fields[12])  # state, utime + stime

    state, cpu = sample()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now_state, now_cpu = sample()
        if state != "S" or now_state != "S" or now_cpu != cpu:
            return False
    return True


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def histories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """42,001 documents in 15 files: 7 files of Case Status API answers, 7 of myUSCIS answers
    (3,000 each), and one that is not JSON. An ingest stores them in chunks of 20,000 (42,000
    histories are fewer rows than it stores before its first commit, so the whole ingest is
    one transaction); the per-document path keeps the file it stopped in open while it stores
    a chunk, so the open file tells from outside how far it is."""
    folder = tmp_path_factory.mktemp("faults") / "histories"
    write_sample(folder, 42_000, seed=17, as_of=AS_OF, per_file=3000)
    (folder / "zz-broken.json").write_text('{"case_status": ')
    return folder


@pytest.fixture(scope="module")
def clean_run(histories: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database of one uninterrupted `timelines ingest` of the histories."""
    home = tmp_path_factory.mktemp("clean") / "home"
    done = subprocess.run([timelines_exe(), "ingest", str(histories)], env=child_env(home),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "stored 42000 cases" in done.stdout and "rejected 1" in done.stdout
    return home / "timelines.duckdb"


def committed_state(database: Path) -> dict[str, object]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return {
            "schema_version": con.execute("SELECT max(version) FROM schema_migrations").fetchall()[0][0],
            "runs": con.execute("SELECT flow, status FROM ingest_runs").fetchall(),
            "cases": con.execute("SELECT count(*) FROM cases").fetchall()[0][0],
            "events": con.execute("SELECT count(*) FROM status_events").fetchall()[0][0],
            "quarantine": con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0],
        }
    finally:
        con.close()


@pytest.mark.slow
def test_an_ingest_killed_inside_its_transaction_then_rerun_equals_one_clean_run(
    tmp_path: Path, histories: Path, clean_run: Path
) -> None:
    home = tmp_path / "home"
    ingest = subprocess.Popen([timelines_exe(), "ingest", str(histories)], env=child_env(home),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # its first progress line comes once its first chunk is stored and the next is ready:
        # inside its first (here its only) transaction, with more to store before it commits
        assert ingest.stderr is not None
        first = ingest.stderr.readline()
        ingest.send_signal(signal.SIGKILL)
        progress = re.match(r"ingesting: ([\d,]+) read so far, ([\d,]+) cases stored, 1 rejected "
                            r"\(0 cases committed", first)
        assert progress, first
        assert 0 < int(progress[2].replace(",", "")) < 42_000, first
    finally:
        ingest.kill()
        ingest.communicate()
    assert ingest.returncode == -signal.SIGKILL, "the ingest ended before it could be killed"

    killed = committed_state(home / "timelines.duckdb")
    assert killed["schema_version"] and (killed["cases"], killed["events"], killed["runs"]) == (0, 0, [])
    assert not (home / "published").exists()

    rerun = subprocess.run([timelines_exe(), "ingest", str(histories)], env=child_env(home),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "stored 42000 cases (42000 new cases" in rerun.stdout
    assert table_contents(home / "timelines.duckdb") == table_contents(clean_run)
    assert current_snapshot(home / "published").meta["n_cases"] == 42_000


@pytest.mark.slow
def test_a_killed_pooled_ingest_leaves_no_worker_behind_and_reruns_cleanly(
    tmp_path: Path, histories: Path, clean_run: Path
) -> None:
    home = tmp_path / "home"
    # the per-document path (not the bulk one) forced onto its pool of processes
    code = (
        "import sys\nfrom pathlib import Path\nfrom pipeline.jobs import ingest as ingest_job\nfrom pipeline.jobs import refresh as refresh_job\n"
        "from pipeline.settings import load_settings\n"
        "ingest_job.PARALLEL_MIN_BYTES = 0\n"
        "files = ingest_job.discover_inputs([Path(sys.argv[1])])\n"
        "ingest_job.ingest_files(load_settings(), files, bulk=False,\n"
        "                        on_progress=lambda result, committed: print(result.n_stored, flush=True))\n"
    )
    ingest = subprocess.Popen([sys.executable, "-c", code, str(histories)], env=child_env(home),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workers: set[int] = set()
    try:
        # its first report comes when the first chunk is stored and the pool has the next ready
        assert ingest.stdout is not None
        first = ingest.stdout.readline()
        workers.update(descendants(ingest.pid))
        ingest.send_signal(signal.SIGKILL)
        assert first.strip() == "20000" and len(workers) >= 2, (first, workers)
    finally:
        ingest.kill()
        ingest.communicate()
    assert ingest.returncode == -signal.SIGKILL, "the ingest ended before it could be killed"
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to exit", timeout=120)
    assert committed_state(home / "timelines.duckdb")["cases"] == 0

    rerun = subprocess.run([timelines_exe(), "ingest", str(histories)], env=child_env(home),
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert table_contents(home / "timelines.duckdb") == table_contents(clean_run)


class Holder:
    """Another process that has the database file open, as a writing flow would."""

    def __init__(self, database: Path) -> None:
        code = ("import duckdb, sys, time\ncon = duckdb.connect(sys.argv[1])\n"
                "print('held', flush=True)\nsys.stdin.readline()\ncon.close()\n"
                "print(time.time(), flush=True)\n")
        self.process = subprocess.Popen([sys.executable, "-c", code, str(database)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "held"

    def release(self) -> float:
        """Close the database; return when (epoch seconds)."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("release\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def stop(self) -> None:
        self.process.kill()
        self.process.communicate()


@pytest.fixture
def hold_database() -> Iterator[Callable[[Path], Holder]]:
    holders: list[Holder] = []

    def hold(database: Path) -> Holder:
        holders.append(Holder(database))
        return holders[-1]

    yield hold
    for holder in holders:
        holder.stop()


def published_home(home: Path) -> Settings:
    from pipeline.jobs import ingest as ingest_job
    from pipeline.jobs import refresh as refresh_job

    settings = Settings(home)
    write_sample(home / "sample", 300, seed=3, as_of=AS_OF)
    ingest_job.ingest(settings, [home / "sample"])
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    return settings


def test_while_another_process_holds_the_database_readers_keep_serving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold_database: Callable[[Path], Holder]
) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.support.dashboard import APP

    settings = published_home(tmp_path / "home")
    hold_database(settings.database_path)
    with pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(settings.database_path), read_only=True)  # really held

    snapshot = current_snapshot(settings.published_dir)
    assert snapshot.meta["n_cases"] == 300 and snapshot.table("case_stats").height > 0

    stats = subprocess.run([timelines_exe(), "stats", "--format", "json"],
                           env=child_env(settings.home, shared_key=False),
                           capture_output=True, text=True, timeout=300)
    assert stats.returncode == 0, stats.stderr
    assert sum(row["n_cases"] or 0 for row in json.loads(stats.stdout)) <= 300

    monkeypatch.setenv("TIMELINES_HOME", str(settings.home))
    for page in ("overview", "processing_times", "health"):
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.message for e in at.exception]
        assert "No statistics have been published" not in " ".join(str(m.value) for m in at.markdown)


@pytest.mark.slow
def test_a_writer_waits_for_a_held_database_then_goes_on(
    tmp_path: Path, hold_database: Callable[[Path], Holder]
) -> None:
    settings = published_home(tmp_path / "home")
    more = tmp_path / "more"
    write_sample(more, 50, seed=4, as_of=AS_OF)
    holder = hold_database(settings.database_path)
    ingest = subprocess.Popen([timelines_exe(), "ingest", str(more)],
                              env=child_env(settings.home, shared_key=False),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: sleeping_for(ingest.pid, 1.0), "the ingest to wait for the database")
    released = holder.release()
    out, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 0, err
    assert "stored 50 cases (50 new cases" in out
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        [(started,)] = con.execute("SELECT max(started_at) FROM ingest_runs WHERE flow = 'ingest'").fetchall()
    finally:
        con.close()
    assert started.timestamp() < released, "the ingest started after the database was free"


def submit(settings: Settings, receipt: str) -> str:
    """Queue one consented submission in the inbox, as the submit page does; return its code."""
    from datetime import datetime

    from pipeline.inbox.consent import give_consent
    from pipeline.inbox.folder import write_submission
    from pipeline.prepare.anonymize import key_of
    from pipeline.prepare.preview import preview_submission
    from tests.support.submission_inputs import simplified

    now = datetime.now()
    preview = preview_submission(json.dumps(simplified(receipt)), key=key_of(settings),
                                 now=now)
    return write_submission(settings.inbox_dir, preview, give_consent(now), now=now).code


def states(settings: Settings, codes: list[str]) -> list[str]:
    from pipeline.inbox.folder import lookup_status

    return [lookup_status(settings.inbox_dir, code).state for code in codes]


@pytest.mark.slow
def test_damaged_inbox_files_are_quarantined_with_their_reason_and_the_rest_stored(
    settings: Settings,
) -> None:
    settings.ensure_home()
    codes = [submit(settings, f"MSC24900002{i:02d}") for i in range(3)]
    pending = settings.inbox_dir / "pending"
    damaged = {
        "s_20250101T000000_truncated.json": b'{"format": "timelines-submission/1", "cases": [',
        "s_20250101T000001_not_text.json": b"\xff\xfe\x00garbage\x81",
        "s_20250101T000002_foreign.json": b'{"format": "something else", "cases": []}',
    }
    for name, content in damaged.items():
        (pending / name).write_bytes(content)

    run = subprocess.run([timelines_exe(), "ingest", "--inbox", "--format", "json"],
                         env=child_env(settings.home, shared_key=False),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert sorted(summary["unreadable"]) == sorted(damaged)
    assert summary["stored_cases"] == 3
    assert states(settings, codes) == ["received"] * 3
    assert sorted(p.name for p in (settings.inbox_dir / "unreadable").iterdir()) == sorted(damaged)
    assert not list(pending.iterdir())

    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        kept = dict(con.execute("SELECT origin, reasons FROM quarantine").fetchall())
        [(n_cases,)] = con.execute("SELECT count(*) FROM cases").fetchall()
    finally:
        con.close()
    assert n_cases == 3
    # opaque origins: the file's number in the run, never its name
    assert set(kept) == {f"inbox file {n}" for n in range(1, len(damaged) + 1)}
    for [reason] in kept.values():
        assert "could not be read" in reason and "inbox/unreadable/" in reason
    assert any("not a submission written by this program" in r[0] for r in kept.values())
    assert current_snapshot(settings.published_dir).meta["n_quarantined"] == 3


@pytest.mark.slow
def test_submissions_arriving_during_an_ingest_are_all_stored(
    settings: Settings, histories: Path
) -> None:
    settings = replace(settings, pseudonym_key=Secret(KEY))  # the same key as the child processes
    settings.ensure_home()
    env = child_env(settings.home)
    ingest = subprocess.Popen([timelines_exe(), "ingest", str(histories)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: any(n.endswith(".jsonl") for n in open_files(ingest.pid)) or
             ingest.poll() is not None, "the ingest to start reading")
    # a slow machine, made certain: the ingest (holding the database) is frozen while the
    # first submissions arrive and the inbox job starts, then goes on as more arrive
    os.kill(ingest.pid, signal.SIGSTOP)
    try:
        assert ingest.poll() is None, "the ingest finished before the submissions arrived"
        codes = [submit(settings, f"MSC24900003{i:02d}") for i in range(4)]
        inbox = subprocess.Popen([timelines_exe(), "ingest", "--inbox", "--format", "json"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        codes += [submit(settings, f"MSC24900003{i:02d}") for i in range(4, 8)]
    finally:
        os.kill(ingest.pid, signal.SIGCONT)
    codes += [submit(settings, f"MSC24900003{i:02d}") for i in range(8, 10)]

    out, err = ingest.communicate(timeout=600)
    assert ingest.returncode == 0, err
    assert "stored 42000 cases" in out
    out, err = inbox.communicate(timeout=600)
    assert inbox.returncode == 0, err
    assert json.loads(out)["unreadable"] == []
    late = subprocess.run([timelines_exe(), "ingest", "--inbox", "--format", "json"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert late.returncode == 0, late.stderr

    assert states(settings, codes) == ["received"] * 10
    assert not list((settings.inbox_dir / "pending").iterdir())
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        [(n_cases,)] = con.execute("SELECT count(*) FROM cases").fetchall()
    finally:
        con.close()
    assert n_cases == 42_000 + 10


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_fault_storm_polls_every_due_receipt_once_and_stores_no_event_twice(
    settings: Settings,
) -> None:
    from datetime import datetime, timedelta

    from pipeline.sources.uscis.emulator import EmulatorConfig, EmulatorServer, FaultConfig
    from pipeline.sources.uscis.registry import Registry, registry_path
    from tests.jobs.test_polling import RECEIPTS, case_id, counters, expected_events

    # a fifth of the answers fail (500/502/503), one in twenty hangs past the client's
    # timeout, and the pollers are told 10 requests/s where the server allows 5: spike arrests
    storm = FaultConfig(error_rate=0.2, timeout_rate=0.05, hang_s=2.0, seed=11)
    with EmulatorServer(EmulatorConfig(requests_per_second=5, faults=storm)) as server:
        with Registry(registry_path(settings.ensure_home())) as registry:
            registry.add(RECEIPTS, now=datetime.now() - timedelta(seconds=1))
        env = child_env(settings.home, shared_key=False) | {
            "USCIS_API_BASE_URL": server.base_url, "USCIS_CLIENT_ID": "any",
            "USCIS_CLIENT_SECRET": "any", "USCIS_API_RATE_PER_SECOND": "10",
            "USCIS_API_TIMEOUT_S": "0.5", "USCIS_API_MAX_RETRIES": "8",
        }
        command = [timelines_exe(), "poll", "--format", "json"]
        pollers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=240) for p in pollers]
        assert [p.returncode for p in pollers] == [0, 0], [err for _, err in results]
        summaries = [json.loads(out) for out, _ in results]
        seen = counters(server)
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        after = counters(server)

    assert sum(s["outcomes"]["ok"] for s in summaries) == 50, (summaries, json.loads(again.stdout))
    assert all(s["outcomes"]["error"] == 0 and s["problem"] is None for s in summaries), summaries
    injected = seen["faults_injected"]
    assert injected.get("timeout", 0) > 0 and sum(injected.get(c, 0) for c in ("500", "502", "503")) > 5
    assert seen["by_status"]["429"] > 0

    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        outcomes = con.execute("SELECT case_id, count(*), min(outcome), max(outcome)"
                               " FROM poll_outcomes GROUP BY case_id").fetchall()
        events = con.execute("SELECT case_id, event_date, stage FROM status_events").fetchall()
    finally:
        con.close()
    ids = {case_id(settings, receipt): receipt for receipt in RECEIPTS}
    assert sorted(row[0] for row in outcomes) == sorted(ids)  # every due receipt...
    assert {row[1:] for row in outcomes} == {(1, "ok", "ok")}  # ...polled once, successfully
    expected = {(cid, day, stage) for cid, receipt in ids.items()
                for day, stage in expected_events(receipt)}
    assert len(events) == len(expected) and set(events) == expected  # no event twice

    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["due"] == 0  # nothing is polled twice on one schedule
    assert after["by_endpoint"].get("case-status") == seen["by_endpoint"].get("case-status")
