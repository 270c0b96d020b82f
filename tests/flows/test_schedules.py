"""The schedules `timelines serve` runs: built from the environment, served for real, and a
failed scheduled run shown on the health page."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.publish.heartbeat import scheduler_dir
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample
from tests.support.cli import timelines_exe


def crons(deployments: list[Any]) -> dict[str, tuple[str, str] | None]:
    """flow name -> (cron, time zone) of each deployment, None when it has no schedule."""
    found: dict[str, tuple[str, str] | None] = {}
    for deployment in deployments:
        schedules = deployment.schedules or []
        found[deployment.flow_name] = (
            (schedules[0].schedule.cron, schedules[0].schedule.timezone) if schedules else None
        )
    return found


def test_the_default_schedules_poll_daily_take_the_inbox_every_5_minutes_refresh_hourly() -> None:
    from flows.schedules import build_deployments

    deployments = build_deployments()
    assert crons(deployments) == {
        "poll": ("0 6 * * *", "UTC"),
        "ingest-inbox": ("*/5 * * * *", "UTC"),
        "refresh-statistics": ("15 * * * *", "UTC"),
    }
    assert {f"{d.flow_name}/{d.name}" for d in deployments} == {
        "poll/tracked-receipts", "ingest-inbox/submissions", "refresh-statistics/statistics"}
    assert all(d.concurrency_limit == 1 for d in deployments)


def test_schedules_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.schedules import build_deployments

    monkeypatch.setenv("TIMELINES_POLL_CRON", "30 7 * * 1-5")
    monkeypatch.setenv("TIMELINES_INBOX_CRON", "*/2 * * * *")
    monkeypatch.setenv("TIMELINES_REFRESH_CRON", "off")
    monkeypatch.setenv("TIMELINES_SCHEDULE_TIMEZONE", "America/New_York")
    assert crons(build_deployments()) == {
        "poll": ("30 7 * * 1-5", "America/New_York"),
        "ingest-inbox": ("*/2 * * * *", "America/New_York"),
        "refresh-statistics": None,  # off: the deployment stays, to be run by hand
    }


def test_the_deployed_flows_record_their_failures() -> None:
    from prefect.flows import load_flow_from_entrypoint

    from flows.schedules import build_deployments, record_failed_flow_run

    for deployment in build_deployments():
        flow = load_flow_from_entrypoint(deployment.entrypoint)  # what the runner runs
        assert flow.name == deployment.flow_name
        assert record_failed_flow_run in flow.on_failure_hooks


def test_with_poll_shards_the_poll_schedule_starts_several_poll_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows.schedules import build_deployments
    from pipeline.jobs.poll_shards import shard_sizes

    monkeypatch.setenv("TIMELINES_POLL_SHARDS", "3")
    deployments = {d.flow_name: d for d in build_deployments()}
    assert crons(list(deployments.values()))["poll-sharded"] == ("0 6 * * *", "UTC")
    assert crons([deployments["poll"]])["poll"] is None  # started by poll-sharded only
    assert deployments["poll"].concurrency_limit == 3
    assert deployments["poll-sharded"].parameters == {"shards": 3}
    assert shard_sizes(50, 3) == [17, 17, 16] and shard_sizes(2, 3) == [1, 1]
    assert shard_sizes(0, 3) == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TIMELINES_INBOX_CRON", "every 5 minutes", "TIMELINES_INBOX_CRON='every 5 minutes' is not a cron"),
        ("TIMELINES_POLL_CRON", "0 25 * * *", "TIMELINES_POLL_CRON='0 25 * * *' is not a cron"),
        ("TIMELINES_SCHEDULE_TIMEZONE", "Mars/Olympus", "is not a time zone name"),
        ("TIMELINES_POLL_SHARDS", "many", "TIMELINES_POLL_SHARDS='many' must be a whole number"),
    ],
)
@pytest.mark.slow
def test_serve_names_a_bad_schedule_setting_and_starts_nothing(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "PREFECT_API"))}
    env |= {"TIMELINES_HOME": str(tmp_path / "home"), variable: value}
    result = subprocess.run([timelines_exe(), "serve", "--port", "1"], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "prefect").exists()  # no server was started


def wait_for_final_state(flow_run_id: Any, timeout: float = 300) -> Any:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state is not None and run.state.is_final():
                return run
            assert time.monotonic() < deadline, f"flow run still {run.state}"
            time.sleep(1)


def wait_for_file(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} was never written"
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("prefect_harness")
def test_serve_runs_the_deployments_and_a_failed_run_shows_on_the_health_page(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL
    from streamlit.testing.v1 import AppTest

    from tests.support.dashboard import APP

    write_sample(tmp_path / "sample", 300, seed=8, as_of=date(2025, 6, 1))
    ingest_job.ingest(settings, [tmp_path / "sample"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "USCIS_"))}
    env |= {"TIMELINES_HOME": str(settings.home), "PREFECT_API_URL": str(PREFECT_API_URL.value()),
            "TIMELINES_POLL_CRON": "45 4 * * *"}
    serve = subprocess.Popen([timelines_exe(), "serve"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_deployment("refresh-statistics/statistics", serve)
        with get_client(sync_client=True) as client:
            poll = client.read_deployment_by_name("poll/tracked-receipts")
        assert poll.schedules[0].schedule.cron == "45 4 * * *"

        refresh = run_deployment("refresh-statistics/statistics", timeout=0)
        failing = run_deployment("poll/tracked-receipts", timeout=0)  # no USCIS credentials are set
        assert wait_for_final_state(refresh.id).state.is_completed()
        assert wait_for_final_state(failing.id).state.is_failed()
        # Prefect shows the run failed before its on_failure hooks have run; the last hook
        # notes the end of the run, so wait for that before stopping the server
        wait_for_file(scheduler_dir(settings.home) / "last-run-poll.json")
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            output = serve.communicate(timeout=120)[0]
        except subprocess.TimeoutExpired:
            serve.kill()
            output = serve.communicate()[0]
    assert "serving 3 deployments" in output

    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        runs = con.execute("SELECT flow, status, message FROM ingest_runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    assert ("refresh", "ok") in [(flow, status) for flow, status, _ in runs]
    [(_, status, message)] = [r for r in runs if r[0] == "poll"]  # the two ran at once
    assert status == "failed" and "USCIS_CLIENT_ID" in message

    monkeypatch.setenv("TIMELINES_HOME", str(settings.home))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/health.py").run()
    assert not at.exception
    errors = " ".join(str(e.value) for e in at.error)
    assert "The last poll run" in errors and "USCIS_CLIENT_ID" in errors


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.usefixtures("prefect_harness")
def test_a_sharded_poll_runs_two_processes_under_one_rate_limit(
    settings: Settings, tmp_path: Path
) -> None:
    from datetime import datetime, timedelta

    import httpx
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from pipeline.sources.uscis.emulator import (
        EmulatorConfig,
        EmulatorServer,
        load_sandbox_receipts,
    )
    from pipeline.sources.uscis.registry import Registry, registry_path

    receipts = sorted(load_sandbox_receipts())
    with Registry(registry_path(settings.ensure_home())) as registry:
        registry.add(receipts, now=datetime.now() - timedelta(seconds=1))
    with EmulatorServer(EmulatorConfig(requests_per_second=5)) as emulator:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TIMELINES_", "USCIS_"))}
        env |= {"TIMELINES_HOME": str(settings.home), "PREFECT_API_URL": str(PREFECT_API_URL.value()),
                "TIMELINES_POLL_SHARDS": "2", "USCIS_API_BASE_URL": emulator.base_url,
                "USCIS_CLIENT_ID": "any", "USCIS_CLIENT_SECRET": "any",
                "USCIS_API_RATE_PER_SECOND": "5"}
        serve = subprocess.Popen([timelines_exe(), "serve"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_deployment("poll-sharded/split-between-shards", serve)
            parent = run_deployment("poll-sharded/split-between-shards", timeout=0)
            assert wait_for_final_state(parent.id).state.is_completed()
        finally:
            serve.send_signal(signal.SIGINT)
            try:
                serve.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.communicate()
        seen = httpx.get(f"{emulator.base_url}/_emulator/stats").json()

    assert seen["by_receipt"] == dict.fromkeys(receipts, 1)  # each receipt polled once
    assert seen["by_status"] == {"200": 52}  # one token per shard, no self-caused 429
    assert seen["max_requests_per_second"] <= 5  # the two shards together kept the cap
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        shards = con.execute(
            "SELECT r.run_id, r.started_at, r.finished_at, count(*) FROM poll_outcomes o"
            " JOIN ingest_runs r USING (run_id) WHERE o.outcome = 'ok' GROUP BY ALL ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    assert [n for *_, n in shards] == [25, 25]  # two poll runs, each on half the receipts
    (_, start_a, end_a, _), (_, start_b, end_b, _) = shards
    assert start_b < end_a and start_a < end_b  # ...at the same time


def wait_for_deployment(name: str, serve: subprocess.Popen[str], timeout: float = 240) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            try:
                client.read_deployment_by_name(name)
                return
            except Exception:
                assert serve.poll() is None, serve.communicate()[0]
                assert time.monotonic() < deadline, f"{name} never appeared"
                time.sleep(1)
