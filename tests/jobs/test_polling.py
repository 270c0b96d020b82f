"""Polling the Case Status API for real over HTTP, against the sandbox emulator on 127.0.0.1,
into a real DuckDB file: faults, limits, idempotence, privacy and deletion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import polars as pl
import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.forget import forget_receipt, tables_with_cases
from pipeline.jobs.poll import (
    Answer,
    FetchProgress,
    prepare_answers,
    run_poll,
    store_poll,
)
from pipeline.jobs.poll_results import PollRun, record_outcomes
from pipeline.parse.fields import parse_datetime
from pipeline.prepare.anonymize import load_key, pseudonymize
from pipeline.publish.reader import current_snapshot
from pipeline.receipts import RECEIPT_IN_TEXT_RE
from pipeline.settings import Settings
from pipeline.sources.uscis.client import ApiSettings, Secret
from pipeline.sources.uscis.emulator import (
    EmulatorServer,
    FaultConfig,
    load_sandbox_receipts,
    plan_case,
)
from pipeline.sources.uscis.registry import Registry, registry_path
from pipeline.sources.uscis.traffic_report import production_readiness, traffic_table
from tests.conftest import StartEmulator
from tests.support.cli import timelines_exe

SANDBOX = load_sandbox_receipts()
RECEIPTS = sorted(SANDBOX)
UNKNOWN = "EAC0000000001"  # well formed, unknown to the sandbox: 404
EMULATOR_STAGES = {"fingerprints": "biometrics", "card_produced": "card_production",
                   "mailed": "card_mailed"}



def api_for(server: EmulatorServer, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "client_id": Secret("sandbox-id"),
        "client_secret": Secret("sandbox-secret"),
        "base_url": server.base_url,
        "requests_per_second": 200,
        "backoff_base_s": 0.02,
        "timeout_s": 5.0,
    }
    return ApiSettings(**(values | overrides))


def track(settings: Settings, receipts: list[str], now: datetime | None = None) -> None:
    with Registry(registry_path(settings.ensure_home())) as registry:
        registry.add(receipts, now=now or datetime.now() - timedelta(seconds=1))


def rows(settings: Settings, sql: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def counters(server: EmulatorServer) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/_emulator/stats").json()  # type: ignore[no-any-return]


def registry_outcomes(settings: Settings) -> dict[str, str | None]:
    with Registry(registry_path(settings.home)) as registry:
        return {t.receipt: t.last_outcome for t in registry.tracked()}


def case_id(settings: Settings, receipt: str) -> str:
    return pseudonymize(receipt, load_key(settings.key_path))


def expected_events(receipt: str) -> set[tuple[date, str]]:
    """The (date, stage) pairs the emulator's first answer reveals for a receipt."""
    plan = plan_case(receipt, SANDBOX[receipt])
    shown = plan.steps[: plan.initially_shown]
    if not plan.has_history:  # the current status, and the receipt date from submittedDate
        shown = (("received", plan.steps[0][1]), shown[-1])
    return {(when.date(), EMULATOR_STAGES.get(key, key)) for key, when in shown}


def test_a_poll_stores_every_sandbox_case_and_records_every_outcome(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000)
    track(settings, [*RECEIPTS, UNKNOWN])
    started = datetime.now()
    summary = run_poll(settings, api_for(server))

    assert summary.outcomes == {"ok": 50, "not_found": 1, "invalid": 0, "error": 0, "quota": 0}
    assert (summary.n_new_cases, summary.n_left, summary.problem) == (50, 0, None)
    assert summary.requests == {200: 51, 404: 1}  # 1 token, 51 case requests
    assert rows(settings, "SELECT count(*), bool_and(synthetic) FROM cases") == [(50, True)]
    assert rows(settings, "SELECT count(*) FROM cases WHERE last_seen < ?", [started]) == [(0,)]
    for receipt in RECEIPTS:  # every event the API revealed, and no other
        stored = rows(settings, "SELECT event_date, stage FROM status_events WHERE case_id = ?",
                      [case_id(settings, receipt)])
        assert set(stored) == expected_events(receipt), receipt

    legacy = RECEIPTS[0]
    plan = plan_case(legacy, SANDBOX[legacy])
    modified = plan.body(plan.initially_shown)["case_status"]["modifiedDate"]
    assert rows(settings, "SELECT last_modified FROM cases WHERE case_id = ?",
                [case_id(settings, legacy)]) == [(parse_datetime(modified),)]

    outcomes = dict(rows(settings, "SELECT case_id, outcome FROM poll_outcomes"))
    assert outcomes[case_id(settings, UNKNOWN)] == "not_found"
    assert sorted(outcomes.values()).count("ok") == 50
    assert rows(settings, "SELECT count(*) FROM case_observations") == [(50,)]
    traffic = dict(rows(settings, "SELECT status, sum(n_requests)::INT FROM api_traffic"
                                  " WHERE api = 'emulator' GROUP BY status"))
    assert {str(k): v for k, v in traffic.items()} == counters(server)["by_status"]

    snapshot = current_snapshot(settings.published_dir)
    published = snapshot.table("poll_outcomes")
    assert "case_id" not in published.columns
    assert dict(zip(published["outcome"], published["n_cases"], strict=True)) == {
        "ok": 50, "not_found": 1}
    assert snapshot.table("api_traffic")["n_requests"].sum() == 52
    assert registry_outcomes(settings)[UNKNOWN] == "not_found"


def test_polling_twice_adds_no_duplicate_events_and_merges_new_ones(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000)
    track(settings, RECEIPTS)
    first = run_poll(settings, api_for(server))
    events = rows(settings, "SELECT count(*) FROM status_events")[0][0]
    again = run_poll(settings, api_for(server), force=True)
    assert again.outcomes["ok"] == 50
    assert (again.n_new_cases, again.n_new_events, again.n_updated_cases) == (0, 0, 0)
    assert rows(settings, "SELECT count(*) FROM status_events")[0][0] == events
    assert rows(settings, "SELECT count(*) FROM cases")[0][0] == 50
    assert rows(settings, "SELECT count(*) FROM case_observations")[0][0] == 100

    # USCIS moves some cases on: the next poll adds exactly their new events.
    httpx.post(f"{server.base_url}/_emulator/config", json={"advance_every": 1})
    moved = run_poll(settings, api_for(server), force=True)
    assert moved.n_new_events > 0 and moved.n_updated_cases > 0
    assert rows(settings, "SELECT count(*) FROM status_events")[0][0] == events + moved.n_new_events
    per_case = rows(settings, "SELECT sum(new_events)::INT FROM poll_outcomes WHERE run_id = ?",
                    [moved.run_id])
    assert per_case == [(moved.n_new_events,)] and first.n_new_events == events


def test_a_token_expiring_mid_run_is_renewed(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    # Tokens lapse after 1.5 s while the server promises 30 minutes (longer than a request
    # waits for its slot with several in flight, as with the real 30 minutes).
    server = start_emulator(token_ttl_s=2.5, advertised_expires_in="1799", requests_per_second=1000)
    track(settings, RECEIPTS[:40])
    summary = run_poll(settings, api_for(server, requests_per_second=10))
    assert summary.outcomes["ok"] == 40 and summary.problem is None, summary.describe()
    seen = counters(server)
    assert seen["tokens_issued"] >= 2 and seen["by_status"]["401"] >= 1
    assert summary.requests[401] == seen["by_status"]["401"]


def test_a_429_storm_is_waited_out(settings: Settings, start_emulator: StartEmulator) -> None:
    server = start_emulator(requests_per_second=3)  # the client is told it may send 20/s
    track(settings, RECEIPTS[:10])
    # One in flight: each 429's Retry-After pauses the sender, then the retry gets through.
    summary = run_poll(settings, api_for(server, requests_per_second=20, max_in_flight=1))
    assert summary.outcomes["ok"] == 10 and summary.problem is None
    seen = counters(server)
    assert seen["by_status"]["429"] >= 1 and seen["by_status"]["200"] == 11
    assert summary.requests[429] == seen["by_status"]["429"]


def test_server_errors_and_timeouts_are_retried(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    # Four failures, then success, for the first receipt (the client retries 4 times); one more.
    faults = FaultConfig(script=["500", "502", "timeout", "503", "ok", "500"], hang_s=3.0)
    server = start_emulator(requests_per_second=1000, faults=faults)
    track(settings, RECEIPTS[:5])
    summary = run_poll(settings, api_for(server, timeout_s=0.5))
    assert summary.outcomes["ok"] == 5 and summary.problem is None
    assert summary.requests == {0: 1, 200: 6, 500: 2, 502: 1, 503: 1}
    assert counters(server)["faults_injected"] == {
        "500": 2, "502": 1, "503": 1, "ok": 1, "timeout": 1}


def test_a_service_that_stays_down_stops_the_run_and_the_next_run_catches_up(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000, faults=FaultConfig(error_rate=1.0))
    track(settings, RECEIPTS[:8])
    # One request at a time, so the run stops exactly after the fifth failure in a row.
    down = run_poll(settings, api_for(server, max_retries=1, max_in_flight=1))
    assert down.outcomes["error"] == 5 and down.n_left == 3
    assert down.problem and "no usable answer for 5 receipts in a row" in down.problem
    assert "Monday to Friday" in down.problem
    reasons = rows(settings, "SELECT DISTINCT reason FROM poll_outcomes")
    assert all(re.search(r"HTTP 50[023]", reason) for (reason,) in reasons)
    assert rows(settings, "SELECT count(*) FROM cases") == [(0,)]
    assert Counter(registry_outcomes(settings).values()) == {"error": 5, None: 3}

    httpx.post(f"{server.base_url}/_emulator/faults", json={"error_rate": 0.0})
    back = run_poll(settings, api_for(server))
    assert back.outcomes["ok"] == 8 and back.problem is None
    assert set(registry_outcomes(settings).values()) == {"ok"}


def test_malformed_bodies_are_errors_and_polled_again(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    faults = FaultConfig(script=["malformed", "malformed"])
    server = start_emulator(requests_per_second=1000, faults=faults)
    track(settings, RECEIPTS[:3])
    first = run_poll(settings, api_for(server))
    assert (first.outcomes["ok"], first.outcomes["error"]) == (1, 2)
    reasons = {r for (r,) in rows(settings, "SELECT reason FROM poll_outcomes WHERE outcome = 'error'")}
    assert reasons == {"Case Status API sent a body that is not JSON (HTTP 200, invalid_json)"}
    second = run_poll(settings, api_for(server))
    assert second.outcomes["ok"] == 2 and second.n_due == 2
    assert rows(settings, "SELECT count(*) FROM cases") == [(3,)]


def test_answers_that_cannot_be_stored_are_quarantined_under_the_pseudonym(
    settings: Settings,
) -> None:
    track(settings, ["EAC9999103403", "EAC9999103404", "EAC9999103405"])
    now = datetime.now()
    future = (now + timedelta(days=40)).strftime("%m-%d-%Y %H:%M:%S")
    progress = FetchProgress()
    bodies = {
        "EAC9999103403": {"receiptNumber": "EAC9999103499", "formType": "I-485",
                          "submittedDate": "01-02-2024 10:00:00"},
        "EAC9999103404": {"receiptNumber": "EAC9999103404", "formType": "I-485"},
        "EAC9999103405": {"receiptNumber": "EAC9999103405", "formType": "I-485",
                          "submittedDate": future,
                          "current_case_status_text_en": "Case Was Received"},
    }
    for receipt, body in bodies.items():
        progress.answer(receipt, Answer({"case_status": body}, now))
    prepared = prepare_answers(progress, load_key(settings.key_path), synthetic=True, now=now)
    assert {o.outcome for o in prepared.outcomes.values()} == {"error"}
    assert "different receipt number" in str(prepared.outcomes["EAC9999103403"].reason)
    assert "no dates at all" in str(prepared.outcomes["EAC9999103404"].reason)
    assert "quarantined" in str(prepared.outcomes["EAC9999103405"].reason)
    with Registry(registry_path(settings.home)) as registry:
        store_poll(settings, prepared, progress, PollRun(now, "emulator"),
                   still_tracked=registry.receipts, message="test")
        record_outcomes(registry, prepared, jobs_schedule())
    quarantined = {r[0] for r in rows(settings, "SELECT case_id FROM quarantine")}
    assert quarantined == {case_id(settings, r) for r in bodies}
    assert rows(settings, "SELECT count(*) FROM cases") == [(0,)]
    assert set(registry_outcomes(settings).values()) == {"error"}


def jobs_schedule() -> Any:
    from pipeline.jobs.poll import schedule_from_env

    return schedule_from_env({})


def test_a_spent_daily_quota_stops_cleanly_and_the_next_day_resumes(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000)
    ten = RECEIPTS[:10]
    track(settings, ten)
    api = api_for(server, daily_quota=6, max_in_flight=1)  # a token, five case requests a day
    first = run_poll(settings, api)
    assert (first.outcomes["ok"], first.outcomes["quota"], first.n_left) == (5, 1, 4)
    assert first.quota_resets_at is not None and first.problem is None
    assert "resets at" in first.describe() and "4 receipts wait for the next run" in first.describe()
    assert counters(server)["total_requests"] == 6

    same_day = run_poll(settings, api)  # the budget is known to be spent: nothing is claimed
    assert same_day.n_polled == 0 and same_day.n_due == 5
    assert same_day.quota_resets_at is not None and "resets at" in same_day.describe()
    assert counters(server)["total_requests"] == 6  # nothing more was sent

    httpx.post(f"{server.base_url}/_emulator/reset")
    next_day = run_poll(settings, api, clock=lambda: time.time() + 86_400)
    assert next_day.outcomes["ok"] == 5
    assert counters(server)["by_receipt"] == dict.fromkeys(ten[5:], 1)  # exactly the rest
    assert rows(settings, "SELECT count(*) FROM cases") == [(10,)]
    # Cases polled on the first day are due again: the second day's budget runs out too.
    assert rows(settings, "SELECT count(*) FROM poll_outcomes WHERE outcome = 'quota'") == [(2,)]


def test_a_quota_violation_from_the_server_stops_this_and_later_runs(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000, daily_quota=3)
    track(settings, RECEIPTS[:6])
    first = run_poll(settings, api_for(server, max_in_flight=1))
    assert (first.outcomes["ok"], first.outcomes["quota"]) == (3, 1)
    assert first.requests == {200: 4, 429: 1}
    sent = counters(server)["total_requests"]
    later = run_poll(settings, api_for(server))
    assert later.n_polled == 0 and later.quota_resets_at is not None  # known spent: none sent
    assert counters(server)["total_requests"] == sent


def timelines_env(home: Path, server: EmulatorServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "USCIS_"))}
    return env | {
        "TIMELINES_HOME": str(home),
        "USCIS_API_BASE_URL": server.base_url,
        "USCIS_CLIENT_ID": "any",
        "USCIS_CLIENT_SECRET": "any",
    } | extra


@pytest.mark.slow
def test_the_poll_command_ends_well_when_the_quota_is_spent(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000)
    track(settings, RECEIPTS[:5])
    env = timelines_env(settings.home, server, USCIS_API_DAILY_QUOTA="3")
    done = subprocess.run([timelines_exe(), "poll"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "polled 3 of 5 due receipts (2 ok, 1 quota)" in done.stdout
    assert "The daily quota is spent: it resets at" in done.stdout
    report = subprocess.run([timelines_exe(), "poll", "--report"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "emulator" in report.stdout and "emulator traffic does not count" in report.stdout


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_poll_processes_at_once_keep_the_rate_and_split_the_work(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=5)
    track(settings, RECEIPTS)
    # A wide pacing margin: this test is about sharing one budget, not about how close to the
    # slot the margin may go on a busy machine (tests/jobs/test_poll_pace.py is).
    env = timelines_env(settings.home, server, USCIS_API_RATE_PER_SECOND="5",
                        USCIS_API_PACING_MARGIN_MS="25")
    command = [timelines_exe(), "poll", "--limit", "25", "--format", "json"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    results = [run.communicate(timeout=100) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in results]
    summaries = [json.loads(out) for out, _ in results]
    assert [s["outcomes"]["ok"] for s in summaries] == [25, 25]

    seen = counters(server)
    assert seen["max_requests_per_second"] <= 5
    assert seen["by_status"] == {"200": 52}  # no self-caused 429, one token per process
    assert seen["by_receipt"] == dict.fromkeys(RECEIPTS, 1)  # no receipt polled twice
    per_second = seen["requests_per_second"]
    assert len(per_second) >= 9  # 52 requests at 5/s: the two really shared one budget
    assert rows(settings, "SELECT count(*) FROM cases") == [(50,)]


def scan_for_receipts(text: str, receipts: list[str]) -> list[str]:
    found = [r for r in receipts if r in text]
    return found + RECEIPT_IN_TEXT_RE.findall(text)


def test_receipt_numbers_never_reach_the_database_or_the_snapshot(
    settings: Settings, start_emulator: StartEmulator
) -> None:
    ioe = "IOE0900000001"
    server = start_emulator(
        requests_per_second=1000, extra_receipts={ioe: True},
        faults=FaultConfig(script=["ok", "malformed"]),
    )
    everything = [*RECEIPTS, ioe, UNKNOWN]
    track(settings, everything)
    run_poll(settings, api_for(server))
    run_poll(settings, api_for(server), force=True)
    refresh_job.refresh(settings)
    refresh_job.publish(settings)

    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()]
        assert {"cases", "status_events", "poll_outcomes", "api_traffic", "case_observations",
                "quarantine", "ingest_runs"} <= set(tables)
        for table in tables:
            dump = con.execute(f'SELECT * FROM "{table}"').fetchall()
            assert not scan_for_receipts(repr(dump), everything), table
    finally:
        con.close()
    published = list(settings.published_dir.rglob("*"))
    for path in published:
        if path.suffix == ".parquet":
            assert not scan_for_receipts(repr(pl.read_parquet(path).rows()), everything), path
        if path.is_file():
            assert not scan_for_receipts(path.read_bytes().decode("latin-1"), everything), path
    for path in settings.home.rglob("*"):  # every file but the registry itself
        if path.is_file() and not path.name.startswith("registry"):
            raw = path.read_bytes().decode("latin-1")
            assert not [r for r in everything if r in raw], path


def test_track_remove_deletes_the_case_everywhere_including_a_user_submission(
    settings: Settings, start_emulator: StartEmulator, tmp_path: Path
) -> None:
    server = start_emulator(requests_per_second=1000)
    target = RECEIPTS[0]
    plan = plan_case(target, SANDBOX[target])
    received = plan.steps[0][1]
    submitted = tmp_path / "mine.json"
    submitted.write_text(json.dumps({
        "receiptNumber": target,
        "formType": plan.form,
        "submittedDate": received.strftime("%m-%d-%Y"),
        "events": [{"date": (received + timedelta(days=1)).strftime("%Y-%m-%d"),
                    "description": "Case Is Being Actively Reviewed By USCIS"}],
    }))
    assert ingest_job.ingest(settings, [submitted]).n_stored == 1
    track(settings, RECEIPTS[:12])
    run_poll(settings, api_for(server))
    mine = case_id(settings, target)

    # The poll's verified answer replaces what the earlier import said (docs/security.md): the
    # case is known to both sources, its events are the official ones.
    ((sources,),) = rows(settings, "SELECT sources FROM cases WHERE case_id = ?", [mine])
    assert "case_status_api" in sources
    stored = set(rows(settings, "SELECT event_date, stage FROM status_events WHERE case_id = ?",
                      [mine]))
    assert stored == expected_events(target)

    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    before = current_snapshot(settings.published_dir)
    forgotten = forget_receipt(settings, target.lower())
    assert forgotten.was_tracked and forgotten.deleted["cases"] == 1
    assert forgotten.deleted["status_events"] == len(stored)
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        for table in tables_with_cases(con):
            left = con.execute(f'SELECT count(*) FROM "{table}" WHERE case_id = ?', [mine])
            assert left.fetchone() == (0,), table
        assert con.execute("SELECT count(*) FROM cases").fetchone() == (11,)
    finally:
        con.close()
    assert target not in registry_outcomes(settings)
    after = current_snapshot(settings.published_dir)
    assert after.stamp != before.stamp
    assert after.table("durations").height == before.table("durations").height - 1
    assert after.meta["n_cases"] == 11

    later = run_poll(settings, api_for(server), force=True)  # it is not polled any more
    assert later.n_due == 11 and rows(settings, "SELECT count(*) FROM cases") == [(11,)]


def test_the_emulator_command_prints_its_address() -> None:
    proc = subprocess.Popen([timelines_exe(), "emulator", "--port", "0"], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first
        assert "USCIS_API_BASE_URL=" + url.group(0) in proc.stdout.readline()
        assert httpx.get(url.group(0) + "/_emulator/stats").json()["total_requests"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def traffic(days: dict[date, dict[int, int]], api: str = "sandbox") -> pl.DataFrame:
    return pl.DataFrame(
        [{"day": d, "api": api, "endpoint": "case_status", "status": s, "n_requests": n}
         for d, by_status in days.items() for s, n in by_status.items()],
        schema={"day": pl.Date, "api": pl.String, "endpoint": pl.String, "status": pl.Int64,
                "n_requests": pl.Int64},
    )


FRIDAY = date(2025, 3, 7)
WEEK = [FRIDAY - timedelta(days=i) for i in range(5)]  # Mon 3 .. Fri 7 March


def test_five_weekdays_with_200_and_4xx_qualify() -> None:
    good = traffic({day: {200: 40, 404: 1} for day in WEEK})
    assert production_readiness(good, FRIDAY).qualifies
    saturday = production_readiness(good, FRIDAY + timedelta(days=1))
    assert saturday.qualifies and saturday.days[-1].day == FRIDAY  # weekends do not break it
    monday = production_readiness(good, FRIDAY + timedelta(days=3))  # today not polled yet
    assert monday.qualifies and monday.streak == 5


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({date(2025, 3, 5): {200: 40}}, "Wed 2025-03-05: no 4xx answer"),
        ({date(2025, 3, 5): {404: 2}}, "Wed 2025-03-05: no 200 answer"),
        ({date(2025, 3, 5): {200: 40, 429: 3}}, "no 4xx answer"),  # a rate limit is no answer
    ],
)
def test_a_missing_answer_kind_breaks_the_streak(
    change: dict[date, dict[int, int]], problem: str
) -> None:
    days = {day: {200: 40, 404: 1} for day in WEEK} | change
    readiness = production_readiness(traffic(days), FRIDAY)
    assert not readiness.qualifies and readiness.streak == 2
    assert problem in readiness.describe()
    emulator = traffic({day: {200: 1, 404: 1} for day in WEEK}, "emulator")
    emulator_only = production_readiness(emulator, FRIDAY)
    assert not emulator_only.qualifies and emulator_only.streak == 0


def test_traffic_table_has_a_column_per_status() -> None:
    table = traffic_table(traffic({FRIDAY: {200: 3, 404: 1, 0: 2}}), FRIDAY - timedelta(days=7))
    assert table.columns == ["day", "api", "0", "200", "404", "total"]
    assert table.row(0) == (FRIDAY, "sandbox", 2, 3, 1, 6)


@pytest.mark.usefixtures("prefect_harness")
def test_the_poll_flow_runs_for_real(
    settings: Settings, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.poll import poll_flow

    server = start_emulator(requests_per_second=1000)
    for name, value in timelines_env(settings.home, server,
                                     USCIS_API_RATE_PER_SECOND="100").items():
        if name.startswith(("USCIS_", "TIMELINES_")):
            monkeypatch.setenv(name, value)
    track(settings, [*RECEIPTS[:10], UNKNOWN])
    summary = poll_flow()
    assert summary.outcomes["ok"] == 10 and summary.outcomes["not_found"] == 1
    assert current_snapshot(settings.published_dir).table("api_traffic")["n_requests"].sum() == 12
    assert poll_flow().n_due == 0  # nothing is due right after


@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_retries_the_fetch_when_the_api_was_down_and_resumes(
    settings: Settings, start_emulator: StartEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.poll import poll_flow

    server = start_emulator(requests_per_second=1000, faults=FaultConfig(script=["503"] * 5))
    for name, value in timelines_env(settings.home, server, USCIS_API_MAX_RETRIES="0",
                                     USCIS_API_MAX_IN_FLIGHT="1",
                                     TIMELINES_POLL_FETCH_RETRY_DELAYS="0").items():
        if name.startswith(("USCIS_", "TIMELINES_")):
            monkeypatch.setenv(name, value)
    track(settings, RECEIPTS[:10])
    summary = poll_flow()
    # The first attempt stopped after five 503s; the task's retry asked again only about
    # what was not settled, and the traffic of both attempts is counted.
    assert summary.outcomes["ok"] == 10 and summary.problem is None
    assert summary.requests == {200: 11, 503: 5}  # one token: the retry reuses the client
    assert counters(server)["by_receipt"] == {
        **dict.fromkeys(RECEIPTS[:5], 2), **dict.fromkeys(RECEIPTS[5:10], 1)}
