"""The sandbox emulator on a real socket, and the API client against it."""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.sources.uscis import client as uscis_api
from pipeline.sources.uscis.client import (
    NO_RESPONSE,
    ApiSettings,
    AuthenticationFailed,
    CaseNotFound,
    CaseStatusClient,
    MalformedResponse,
    QuotaExhausted,
    Secret,
    ServiceUnavailable,
    build_http_client,
)
from pipeline.sources.uscis.emulator import (
    FORMS,
    EmulatorServer,
    FaultConfig,
    load_sandbox_receipts,
    plan_case,
    serve_emulator,
)
from pipeline.sources.uscis.ratelimit import DailyQuotaExhausted, SqliteRateLimiter
from tests.conftest import StartEmulator

SANDBOX = load_sandbox_receipts()
WITH_HISTORY = sorted(r for r, has in SANDBOX.items() if has)
WITHOUT_HISTORY = sorted(r for r, has in SANDBOX.items() if not has)
US_DATE = re.compile(r"\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in dir(uscis_api):
        if name.startswith("ENV_"):
            monkeypatch.delenv(getattr(uscis_api, name), raising=False)




Responses = list[tuple[float, str | None, int]]
Connect = Callable[..., tuple[CaseStatusClient, Responses]]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Build API clients for an emulator; each records (time, receipt, status) per response."""
    opened: list[httpx.Client] = []

    def make(
        server: EmulatorServer, *, timeout: float = 5.0, **settings: Any
    ) -> tuple[CaseStatusClient, Responses]:
        values: dict[str, Any] = {
            "client_id": Secret("sandbox-id"),
            "client_secret": Secret("sandbox-secret"),
            "base_url": server.base_url,
            "requests_per_second": 1000,
            "backoff_base_s": 0.05,
            "max_retries": 4,
        }
        http = build_http_client(server.base_url, timeout=timeout)
        opened.append(http)
        seen: Responses = []
        client = CaseStatusClient(
            http,
            ApiSettings(**(values | settings)),
            on_response=lambda r, s, e: seen.append((time.time(), r, s)),
        )
        return client, seen

    yield make
    for http in opened:
        http.close()


def stats(server: EmulatorServer) -> dict[str, Any]:
    return httpx.get(f"{server.base_url}/_emulator/stats").json()  # type: ignore[no-any-return]


def raw_token(server: EmulatorServer) -> str:
    form = {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
    reply = httpx.post(f"{server.base_url}/oauth/accesstoken", data=form)
    assert reply.status_code == 200 and reply.json()["expires_in"] == "1799"
    return str(reply.json()["access_token"])


def test_every_sandbox_receipt_answers_like_the_api(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(requests_per_second=1000)
    client, _ = connect(server)
    bodies = {r: client.fetch_case_status(r) for r in SANDBOX}
    assert len(bodies) == 50
    for receipt, body in bodies.items():
        status = body["case_status"]
        assert body["message"] == "Query was successful"
        assert status["receiptNumber"] == receipt and status["formType"] in FORMS
        assert US_DATE.fullmatch(status["submittedDate"])
        assert US_DATE.fullmatch(status["modifiedDate"])
        assert status["current_case_status_text_es"] and status["current_case_status_desc_es"]
        if SANDBOX[receipt]:
            history = status["hist_case_status"]
            assert history and all(h["completed_text_en"].startswith("We ") for h in history)
            assert all(
                US_DATE.fullmatch(h["date"]) or ISO_DATE.fullmatch(h["date"]) for h in history
            )
        else:
            assert status["hist_case_status"] is None
    everything = repr(bodies)
    assert "<a href=" in everything and "&#39;" in everything
    hist_dates = [
        h["date"] for b in bodies.values() for h in b["case_status"]["hist_case_status"] or []
    ]
    assert any(US_DATE.fullmatch(d) for d in hist_dates)
    assert any(ISO_DATE.fullmatch(d) for d in hist_dates)
    assert len({b["case_status"]["formType"] for b in bodies.values()}) >= 6
    assert client.fetch_case_status(WITH_HISTORY[0]) == bodies[WITH_HISTORY[0]]  # deterministic


def test_ioe_receipts_carry_their_date_in_the_text(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(extra_receipts={"IOE0900000001": True})
    client, _ = connect(server)
    status = client.fetch_case_status("IOE0900000001")["case_status"]
    assert "submittedDate" not in status and "modifiedDate" not in status
    assert re.match(
        r"(On|As of) [A-Z][a-z]+ \d{1,2}, \d{4}, ", status["current_case_status_desc_en"]
    )


def test_unknown_and_malformed_receipts(start_emulator: StartEmulator, connect: Connect) -> None:
    server = start_emulator()
    client, _ = connect(server)
    with pytest.raises(CaseNotFound, match="No case was found"):
        client.fetch_case_status("EAC1234567890")
    headers = {"Authorization": f"Bearer {raw_token(server)}"}
    reply = httpx.get(f"{server.base_url}/case-status/EAC-123", headers=headers)
    assert reply.status_code == 422
    assert reply.json()["errors"][0]["message"] == "Receipt number is not formatted correctly."


def test_bad_tokens_and_credentials_get_apigee_faults(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(client_id="sandbox-id", client_secret="the-right-one")
    reply = httpx.get(f"{server.base_url}/case-status/{WITH_HISTORY[0]}")
    assert reply.status_code == 401
    assert reply.json()["fault"]["faultstring"] == "Invalid access token"
    client, _ = connect(server)  # sends "sandbox-secret"
    with pytest.raises(AuthenticationFailed, match="Invalid client credentials"):
        client.fetch_case_status(WITH_HISTORY[0])


def test_short_lived_tokens_are_renewed_before_they_expire(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(token_ttl_s=1)
    client, _ = connect(server)
    client.fetch_case_status(WITH_HISTORY[0])
    time.sleep(1.0)
    client.fetch_case_status(WITH_HISTORY[0])
    counters = stats(server)
    assert counters["tokens_issued"] == 2 and "401" not in counters["by_status"]


def test_token_expiring_mid_run_is_renewed_once(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    # The server lets tokens lapse after 1 s while promising 30 minutes.
    server = start_emulator(token_ttl_s=1, advertised_expires_in="1799")
    client, seen = connect(server)
    client.fetch_case_status(WITH_HISTORY[0])
    time.sleep(1.1)
    assert client.fetch_case_status(WITH_HISTORY[1])["case_status"]["receiptNumber"]
    assert [s for _, _, s in seen] == [200, 200, 401, 200, 200]
    assert stats(server)["tokens_issued"] == 2


def test_spike_arrest_storm_is_waited_out(start_emulator: StartEmulator, connect: Connect) -> None:
    server = start_emulator(requests_per_second=2)
    client, seen = connect(server)  # the client believes it may send 1000/s
    for receipt in WITH_HISTORY[:4]:
        client.fetch_case_status(receipt)
    statuses = [s for _, _, s in seen]
    assert statuses.count(429) >= 1 and statuses.count(200) == 5
    for (t429, _, s), (t_next, _, _) in itertools.pairwise(seen):
        if s == 429:
            assert t_next - t429 >= 1.0  # Retry-After: 1 was honoured
    assert stats(server)["by_status"]["429"] == statuses.count(429)


def test_server_errors_are_retried_until_success(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(faults=FaultConfig(script=["503", "502", "500"]))
    client, _ = connect(server)
    assert client.fetch_case_status(WITH_HISTORY[0])
    assert stats(server)["by_status"] == {"200": 2, "500": 1, "502": 1, "503": 1}


def test_persistent_server_errors_end_in_a_clear_error(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(faults=FaultConfig(error_rate=1.0, seed=3))
    client, _ = connect(server, max_retries=2)
    with pytest.raises(ServiceUnavailable):
        client.fetch_case_status(WITH_HISTORY[0])
    assert stats(server)["by_receipt"] == {WITH_HISTORY[0]: 3}


def test_a_hung_request_times_out_and_is_retried(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(faults=FaultConfig(script=["timeout", "slow"], hang_s=5, slow_s=0.1))
    client, seen = connect(server, timeout=0.4)
    started = time.monotonic()
    client.fetch_case_status(WITH_HISTORY[0])  # hangs, then slow but in time
    client.fetch_case_status(WITH_HISTORY[1])
    assert time.monotonic() - started < 2.0
    assert [s for _, r, s in seen if r] == [NO_RESPONSE, 200, 200]


def test_truncated_json_is_a_malformed_response(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator()
    client, _ = connect(server)
    httpx.post(f"{server.base_url}/_emulator/faults", json={"script": ["malformed"]})
    with pytest.raises(MalformedResponse):
        client.fetch_case_status(WITH_HISTORY[0])
    assert client.fetch_case_status(WITH_HISTORY[0])


def test_server_quota_ends_polling_without_more_requests(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator(daily_quota=2)
    client, _ = connect(server)
    client.fetch_case_status(WITH_HISTORY[0])
    client.fetch_case_status(WITH_HISTORY[1])
    with pytest.raises(QuotaExhausted, match="quota violation"):
        client.fetch_case_status(WITH_HISTORY[2])
    with pytest.raises(DailyQuotaExhausted):
        client.fetch_case_status(WITH_HISTORY[3])
    assert stats(server)["total_requests"] == 4


def test_local_quota_ends_polling_before_the_server_sees_more(
    start_emulator: StartEmulator, connect: Connect
) -> None:
    server = start_emulator()
    client, _ = connect(server, daily_quota=3)
    client.fetch_case_status(WITH_HISTORY[0])
    client.fetch_case_status(WITH_HISTORY[1])
    with pytest.raises(DailyQuotaExhausted):
        client.fetch_case_status(WITH_HISTORY[2])
    assert stats(server)["total_requests"] == 3


def test_cases_can_advance_between_polls(start_emulator: StartEmulator, connect: Connect) -> None:
    receipt = next(
        r
        for r in WITH_HISTORY
        if plan_case(r, True).initially_shown < len(plan_case(r, True).steps)
    )
    server = start_emulator(advance_every=1)
    client, _ = connect(server)
    first = client.fetch_case_status(receipt)["case_status"]
    second = client.fetch_case_status(receipt)["case_status"]
    assert len(second["hist_case_status"]) == len(first["hist_case_status"]) + 1
    assert second["modifiedDate"] != first["modifiedDate"]


def test_spike_arrest_and_control_endpoints(start_emulator: StartEmulator) -> None:
    server = start_emulator(requests_per_second=2)
    form = {"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"}
    with httpx.Client(base_url=server.base_url) as http:
        replies = [http.post("/oauth/accesstoken", data=form) for _ in range(8)]
        arrested = [r for r in replies if r.status_code == 429]
        assert arrested and all(r.headers["Retry-After"] == "1" for r in arrested)
        assert arrested[0].json()["fault"]["detail"]["errorcode"] == (
            "policies.ratelimit.SpikeArrestViolation"
        )
        counters = http.get("/_emulator/stats").json()
        assert counters["total_requests"] == 8 and counters["max_requests_per_second"] >= 4
        assert sum(counters["requests_per_second_histogram"].values()) in (1, 2)
        bad = http.post("/_emulator/faults", json={"error_rate": "lots"})
        assert bad.status_code == 400
        assert http.post("/_emulator/faults", json={"nope": 1}).status_code == 400
        assert http.post("/_emulator/config", json={"requests_per_second": 50}).status_code == 200
        assert http.post("/_emulator/reset").json()["total_requests"] == 0


def test_serve_emulator_blocks_until_stopped() -> None:
    ready: queue.Queue[EmulatorServer] = queue.Queue()
    thread = threading.Thread(target=serve_emulator, args=(0,), kwargs={"on_ready": ready.put})
    thread.start()
    server = ready.get(timeout=5)
    assert server.port > 0
    assert httpx.get(f"{server.base_url}/_emulator/stats").status_code == 200
    server.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()


def _poll(base_url: str, db_path: str, receipts: list[str], start: Any, out: Any) -> None:
    """Poll receipts from a separate process through the shared SQLite limiter."""
    settings = ApiSettings(
        client_id=Secret("sandbox-id"),
        client_secret=Secret("sandbox-secret"),
        base_url=base_url,
        requests_per_second=5,
        backoff_base_s=0.05,
        pacing_margin_ms=25.0,  # about sharing one budget, not how thin the margin may be
    )
    statuses: list[int] = []
    with (
        SqliteRateLimiter(Path(db_path), settings.rate_policy()) as limiter,
        build_http_client(base_url) as http,
    ):
        client = CaseStatusClient(
            http, settings, limiter=limiter, on_response=lambda r, s, e: statuses.append(s)
        )
        start.wait(timeout=30)
        for receipt in receipts:
            client.fetch_case_status(receipt)
    out.put(statuses)


@pytest.mark.timeout(60)
@pytest.mark.slow
def test_two_processes_never_exceed_the_limit_at_the_server(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    server = start_emulator(requests_per_second=5)
    spawn = multiprocessing.get_context("spawn")
    start, out = spawn.Barrier(2), spawn.Queue()
    db_path = str(tmp_path / "ratelimit.sqlite")
    halves = [WITH_HISTORY[:7], WITHOUT_HISTORY[:7]]
    workers = [
        spawn.Process(target=_poll, args=(server.base_url, db_path, half, start, out))
        for half in halves
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=45) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert all(statuses == [200] * 8 for statuses in results)
    counters = stats(server)
    assert counters["total_requests"] == 16
    assert counters["max_requests_per_second"] <= 5
    assert counters["by_status"] == {"200": 16}
    assert len(counters["requests_per_second"]) >= 3  # the two really ran side by side
