"""The Case Status API client: tokens, typed errors, polite retries (network swapped, not code)."""

from __future__ import annotations

import email.utils
import itertools
import json
import logging
import pickle
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    InvalidReceipt,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    Secret,
    ServiceUnavailable,
    SettingsError,
    UscisApiError,
    api_settings_from_env,
    build_http_client,
)
from pipeline.sources.uscis.ratelimit import DailyQuotaExhausted, InMemoryRateLimiter, RatePolicy

BASE = "https://api.test"
RECEIPT = "LIN9999106499"
CLIENT_SECRET = "s3cr3t-do-not-log"
BAD_CLIENT = "Invalid client identifier {0}"
SPIKE = "policies.ratelimit.SpikeArrestViolation"
CASE_BODY = {"case_status": {"receiptNumber": RECEIPT, "formType": "I-485"}, "message": "ok"}
ENV_NAMES = [name for name in dir(uscis_api) if name.startswith("ENV_")]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(getattr(uscis_api, name), raising=False)


class FakeClock:
    """A wall clock that only moves when someone sleeps."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Answer = httpx.Response | Exception


def fault(status: int, text: str, code: str, **headers: str) -> httpx.Response:
    body = {"fault": {"faultstring": text, "detail": {"errorcode": code}}}
    return httpx.Response(status, json=body, headers=headers)


def errors(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"errors": [{"code": code, "message": message}]})


def token(value: str = "tok-1", expires_in: str = "1799") -> httpx.Response:
    return httpx.Response(200, json={"access_token": value, "expires_in": expires_in})


@dataclass
class FakeCaseStatusApi:
    """Route like the real API: scripted answers for the token and case endpoints."""

    clock: FakeClock
    token_answers: deque[Answer] = field(default_factory=deque)
    case_answers: deque[Answer] = field(default_factory=deque)
    requests: list[tuple[float, httpx.Request]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((self.clock.now, request))
        if request.url.path == "/oauth/accesstoken":
            answers, default = self.token_answers, token(f"tok-{len(self.token_requests)}")
        elif request.url.path.startswith("/case-status/"):
            answers, default = self.case_answers, httpx.Response(200, json=CASE_BODY)
        else:
            return errors(404, "NOT_FOUND", "no such path")
        answer = answers.popleft() if answers else default
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def token_requests(self) -> list[httpx.Request]:
        return [r for _, r in self.requests if r.url.path == "/oauth/accesstoken"]

    @property
    def case_requests(self) -> list[httpx.Request]:
        return [r for _, r in self.requests if r.url.path.startswith("/case-status/")]


def make_settings(**overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "client_id": Secret("client-id"),
        "client_secret": Secret(CLIENT_SECRET),
        "base_url": BASE,
        "requests_per_second": 100,
        "backoff_base_s": 0.5,
        "backoff_cap_s": 30.0,
    }
    return ApiSettings(**(values | overrides))


@dataclass
class Harness:
    api: FakeCaseStatusApi
    clock: FakeClock
    responses: list[tuple[str | None, int, float]]
    client: CaseStatusClient


MakeHarness = Callable[..., Harness]


@pytest.fixture
def harness() -> Iterator[MakeHarness]:
    opened: list[httpx.Client] = []

    def make(**settings: Any) -> Harness:
        clock = FakeClock()
        api = FakeCaseStatusApi(clock)
        http = build_http_client(BASE, transport=httpx.MockTransport(api))
        opened.append(http)
        responses: list[tuple[str | None, int, float]] = []
        # Pacing off unless asked for: these tests count the back-off sleeps exactly.
        settings.setdefault("min_interval_ms", 0.0)
        client = CaseStatusClient(
            http,
            make_settings(**settings),
            on_response=lambda r, s, e: responses.append((r, s, e)),
            clock=clock,
            sleep=clock.sleep,
            rng=random.Random(7),
        )
        return Harness(api, clock, responses, client)

    yield make
    for http in opened:
        http.close()


def test_settings_come_from_the_environment_with_the_official_production_limits() -> None:
    settings = api_settings_from_env({"USCIS_CLIENT_ID": "id", "USCIS_CLIENT_SECRET": "secret"})
    assert settings.base_url == "https://api-int.uscis.gov"
    # developer.uscis.gov's production page: 10 per second, 10,000 a day, reset midnight GMT
    assert (settings.requests_per_second, settings.daily_quota) == (10, 10_000)
    assert settings.quota_reset_zone == "GMT"
    assert settings.rate_policy().interval_s == pytest.approx(0.102)  # 1/rate + 2 ms
    assert settings.max_in_flight >= 3  # 250 ms answers need 3 in flight to reach 10/s
    tuned = api_settings_from_env({"USCIS_CLIENT_ID": "id", "USCIS_CLIENT_SECRET": "secret",
                                   "USCIS_API_MIN_INTERVAL_MS": "250",
                                   "USCIS_API_MAX_IN_FLIGHT": "2"})
    assert (tuned.rate_policy().interval_s, tuned.max_in_flight) == (0.25, 2)
    with pytest.raises(SettingsError, match="USCIS_API_MAX_IN_FLIGHT"):
        api_settings_from_env({"USCIS_CLIENT_ID": "id", "USCIS_CLIENT_SECRET": "secret",
                               "USCIS_API_MAX_IN_FLIGHT": "0"})
    assert settings.client_secret.reveal() == "secret"
    assert "secret" not in repr(settings) and "secret" not in str(settings.client_secret)


def test_settings_read_limits_and_zone() -> None:
    settings = api_settings_from_env(
        {
            "USCIS_CLIENT_ID": "id",
            "USCIS_CLIENT_SECRET": "secret",
            "USCIS_API_BASE_URL": "http://127.0.0.1:9999",
            "USCIS_API_RATE_PER_SECOND": "5",
            "USCIS_API_DAILY_QUOTA": "150000",
            "USCIS_API_QUOTA_RESET": "01:30",
            "USCIS_API_QUOTA_ZONE": "UTC",
        }
    )
    policy = settings.rate_policy()
    assert (policy.requests_per_second, policy.daily_quota) == (5, 150000)
    assert (policy.reset_time.hour, policy.reset_time.minute, policy.reset_zone) == (1, 30, "UTC")
    assert settings.base_url == "http://127.0.0.1:9999"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"USCIS_CLIENT_SECRET": "secret"}, "USCIS_CLIENT_ID"),
        ({"USCIS_CLIENT_ID": "id"}, "USCIS_CLIENT_SECRET"),
        ({"USCIS_CLIENT_ID": "id", "USCIS_CLIENT_SECRET": "  "}, "USCIS_CLIENT_SECRET"),
        ({"USCIS_CLIENT_ID": "i", "USCIS_CLIENT_SECRET": "s", "USCIS_API_DAILY_QUOTA": "lots"},
         "USCIS_API_DAILY_QUOTA"),
        ({"USCIS_CLIENT_ID": "i", "USCIS_CLIENT_SECRET": "s", "USCIS_API_QUOTA_ZONE": "Mars/Base"},
         "USCIS_API_QUOTA_ZONE"),
        ({"USCIS_CLIENT_ID": "i", "USCIS_CLIENT_SECRET": "s", "USCIS_API_RATE_PER_SECOND": "0"},
         "USCIS_API_RATE_PER_SECOND"),
    ],
)  # fmt: skip
def test_bad_or_missing_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        api_settings_from_env(env)


def test_http_client_has_explicit_timeout_and_headers() -> None:
    with build_http_client(BASE, timeout=7.5) as http:
        assert http.timeout.read == 7.5 and http.timeout.connect == 5.0
        assert http.headers["Accept"] == "application/json"
        assert http.headers["User-Agent"].startswith("uscis-timelines/")
        assert str(http.base_url) == BASE


def test_token_is_reused_and_renewed_shortly_before_expiry(harness: MakeHarness) -> None:
    h = harness()
    h.client.fetch_case_status(RECEIPT)
    h.clock.now += 1799 - 61
    assert h.client.fetch_case_status(RECEIPT) == CASE_BODY
    assert len(h.api.token_requests) == 1
    h.clock.now += 2  # now within 60 s of expiry
    h.client.fetch_case_status(RECEIPT)
    assert len(h.api.token_requests) == 2
    auth = [r.headers["Authorization"] for r in h.api.case_requests]
    assert auth == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    form = h.api.token_requests[0]
    assert form.method == "POST"
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form.content.decode() == (
        f"grant_type=client_credentials&client_id=client-id&client_secret={CLIENT_SECRET}"
    )


def test_expired_token_is_renewed_once_and_the_request_retried(harness: MakeHarness) -> None:
    h = harness()
    h.api.case_answers.append(
        fault(401, "Access Token expired", "keymanagement.service.access_token_expired")
    )
    assert h.client.fetch_case_status(RECEIPT) == CASE_BODY
    assert len(h.api.token_requests) == 2
    assert [r.headers["Authorization"] for r in h.api.case_requests] == [
        "Bearer tok-1",
        "Bearer tok-2",
    ]


def test_second_401_is_authentication_failed(harness: MakeHarness) -> None:
    h = harness()
    for _ in range(2):
        h.api.case_answers.append(fault(401, "Invalid access token", "oauth.v2.InvalidAccessToken"))
    with pytest.raises(AuthenticationFailed) as raised:
        h.client.fetch_case_status(RECEIPT)
    assert raised.value.message == "Invalid access token"
    assert raised.value.code == "oauth.v2.InvalidAccessToken"
    assert (len(h.api.token_requests), len(h.api.case_requests)) == (2, 2)


@pytest.mark.parametrize(
    "answer",
    [
        fault(401, "Invalid client identifier {0}", "oauth.v2.InvalidClientIdentifier"),
        httpx.Response(401, json={"ErrorCode": "invalid_client", "Error": BAD_CLIENT}),
        httpx.Response(400, json={"error": "invalid_client", "error_description": BAD_CLIENT}),
    ],
)  # fmt: skip
def test_refused_credentials_are_authentication_failed(
    harness: MakeHarness, answer: httpx.Response
) -> None:
    h = harness()
    h.api.token_answers.append(answer)
    with pytest.raises(AuthenticationFailed, match="Invalid client identifier"):
        h.client.fetch_case_status(RECEIPT)
    assert h.api.case_requests == []


@pytest.mark.parametrize(
    ("answer", "error", "code", "message"),
    [
        (errors(404, "CASE_NOT_FOUND", "receipt number not found"),
         CaseNotFound, "CASE_NOT_FOUND", "receipt number not found"),
        (errors(422, "E422", "receipt number is not formatted correctly"),
         InvalidReceipt, "E422", "receipt number is not formatted correctly"),
        (fault(429, "Rate limit quota violation. Quota limit  exceeded. Identifier : _default",
               "policies.ratelimit.QuotaViolation"),
         QuotaExhausted, "policies.ratelimit.QuotaViolation", "Rate limit quota violation"),
        (fault(429, "Spike arrest violation. Allowed rate : 5ps", SPIKE),
         RateLimited, SPIKE, "Spike arrest violation"),
        (httpx.Response(503, content=b"null"),
         ServiceUnavailable, None, "HTTP 503 Service Unavailable"),
        (httpx.Response(503), ServiceUnavailable, None, "HTTP 503 Service Unavailable"),
        (fault(502, "Bad Gateway", "messaging.adaptors.http.flow.BadGateway"),
         ServiceUnavailable, "messaging.adaptors.http.flow.BadGateway", "Bad Gateway"),
        (httpx.Response(500, text="<html>upstream broke</html>"),
         ServiceUnavailable, None, "HTTP 500 Internal Server Error: <html>upstream broke</html>"),
        (httpx.Response(403, json={"errors": []}), UscisApiError, None, "HTTP 403 Forbidden"),
        (httpx.Response(400, json={"message": "Bad receipt"}), UscisApiError, None, "Bad receipt"),
    ],
)  # fmt: skip
def test_error_bodies_become_typed_errors_with_the_uscis_message(
    harness: MakeHarness,
    answer: httpx.Response,
    error: type[UscisApiError],
    code: str | None,
    message: str,
) -> None:
    h = harness(max_retries=0)
    h.api.case_answers.append(answer)
    with pytest.raises(error) as raised:
        h.client.fetch_case_status(RECEIPT)
    assert type(raised.value) is error
    assert raised.value.status == answer.status_code
    assert raised.value.code == code
    assert raised.value.message.startswith(message)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    "answer",
    [
        errors(404, "CASE_NOT_FOUND", "receipt number not found"),
        errors(422, "E422", "receipt number is not formatted correctly"),
        fault(429, "Rate limit quota violation.", "policies.ratelimit.QuotaViolation"),
        httpx.Response(200, content=b'{"case_status": {"receiptNum'),
    ],
)
def test_answers_that_would_not_change_are_not_retried(
    harness: MakeHarness, answer: httpx.Response
) -> None:
    h = harness(max_retries=5)
    h.api.case_answers.append(answer)
    with pytest.raises(UscisApiError):
        h.client.fetch_case_status(RECEIPT)
    assert len(h.api.case_requests) == 1
    assert h.clock.sleeps == []


def test_spike_arrest_storm_waits_as_told_then_succeeds(harness: MakeHarness) -> None:
    h = harness(max_retries=4)
    for _ in range(3):
        h.api.case_answers.append(fault(429, "Spike arrest", SPIKE, **{"Retry-After": "2"}))
    assert h.client.fetch_case_status(RECEIPT) == CASE_BODY
    case_times = [t for t, r in h.api.requests if r.url.path.startswith("/case-status/")]
    gaps = [b - a for a, b in itertools.pairwise(case_times)]
    assert len(gaps) == 3 and all(2.0 <= gap <= 2.0 + 0.5 + 0.01 for gap in gaps)
    assert [s for _, s, _ in h.responses] == [200, 429, 429, 429, 200]


def test_retry_after_as_http_date_is_honoured(harness: MakeHarness) -> None:
    h = harness()
    when = email.utils.formatdate(h.clock.now + 3, usegmt=True)
    h.api.case_answers.append(fault(429, "Spike arrest violation", "x", **{"Retry-After": when}))
    h.client.fetch_case_status(RECEIPT)
    assert 2.0 <= h.clock.sleeps[0] <= 3.5  # HTTP dates have whole-second resolution


def test_retry_after_beyond_the_cap_fails_at_once(harness: MakeHarness) -> None:
    h = harness(backoff_cap_s=30.0)
    h.api.case_answers.append(fault(503, "Sandbox closed", "closed", **{"Retry-After": "3600"}))
    with pytest.raises(ServiceUnavailable) as raised:
        h.client.fetch_case_status(RECEIPT)
    assert raised.value.retry_after == 3600
    assert len(h.api.case_requests) == 1


def test_server_errors_back_off_with_full_jitter_then_succeed(harness: MakeHarness) -> None:
    h = harness(max_retries=4, backoff_base_s=0.5)
    h.api.case_answers.extend(
        [httpx.Response(503), fault(502, "Bad Gateway", "x"), httpx.Response(500)]
    )
    assert h.client.fetch_case_status(RECEIPT) == CASE_BODY
    assert len(h.clock.sleeps) == 3
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(h.clock.sleeps))


def test_timeouts_are_retried_then_reported_clearly(harness: MakeHarness) -> None:
    h = harness(max_retries=3)
    h.api.case_answers.extend(httpx.ReadTimeout("timed out") for _ in range(4))
    with pytest.raises(ServiceUnavailable, match="No answer from the Case Status API") as raised:
        h.client.fetch_case_status(RECEIPT)
    assert raised.value.status is None and raised.value.code == "ReadTimeout"
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)
    assert len(h.api.case_requests) == 4 and len(h.clock.sleeps) == 3
    assert [s for r, s, _ in h.responses if r == RECEIPT] == [NO_RESPONSE] * 4


def test_a_connection_error_then_success(harness: MakeHarness) -> None:
    h = harness()
    h.api.case_answers.append(httpx.ConnectError("connection refused"))
    assert h.client.fetch_case_status(RECEIPT) == CASE_BODY


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, content=b'{"case_status": {"receiptNumber": "LIN99'),
        httpx.Response(200, content=b""),
        httpx.Response(200, json={"message": "Query was successful"}),
        httpx.Response(200, json={"case_status": None}),
        httpx.Response(200, json=[CASE_BODY]),
    ],
)
def test_malformed_success_bodies(harness: MakeHarness, answer: httpx.Response) -> None:
    h = harness()
    h.api.case_answers.append(answer)
    with pytest.raises(MalformedResponse):
        h.client.fetch_case_status(RECEIPT)


@pytest.mark.parametrize("receipt", ["LIN-99-991-06499", "lin9999106499", "LIN999910649", ""])
def test_malformed_receipt_is_refused_before_any_request(
    harness: MakeHarness, receipt: str
) -> None:
    h = harness()
    with pytest.raises(InvalidReceipt):
        h.client.fetch_case_status(receipt)
    assert h.api.requests == []


def test_daily_quota_stops_cleanly_without_further_requests(harness: MakeHarness) -> None:
    h = harness(daily_quota=3)  # one token request and two case requests
    h.client.fetch_case_status(RECEIPT)
    h.client.fetch_case_status(RECEIPT)
    with pytest.raises(DailyQuotaExhausted):
        h.client.fetch_case_status(RECEIPT)
    assert len(h.api.requests) == 3


def test_server_quota_violation_stops_later_requests_locally(harness: MakeHarness) -> None:
    h = harness()
    h.api.case_answers.append(fault(429, "Rate limit quota violation", "x.QuotaViolation"))
    with pytest.raises(QuotaExhausted):
        h.client.fetch_case_status(RECEIPT)
    with pytest.raises(DailyQuotaExhausted):
        h.client.fetch_case_status(RECEIPT)
    assert len(h.api.case_requests) == 1


@dataclass
class CountingLimiter:
    """A RateLimiter that counts permits and pauses on top of the in-memory one."""

    inner: InMemoryRateLimiter
    acquired: int = 0
    pauses: list[float] = field(default_factory=list)

    def acquire(self) -> None:
        self.inner.acquire()
        self.acquired += 1

    def used_today(self) -> int:
        return self.inner.used_today()

    def remaining_today(self) -> int:
        return self.inner.remaining_today()

    def record_retry_after(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.inner.record_retry_after(seconds)

    def record_quota_exhausted(self) -> None:
        self.inner.record_quota_exhausted()


def test_every_request_takes_a_permit_and_is_reported() -> None:
    clock = FakeClock()
    api = FakeCaseStatusApi(clock)
    api.case_answers.append(fault(429, "Spike arrest violation", "x", **{"Retry-After": "1"}))
    limiter = CountingLimiter(InMemoryRateLimiter(RatePolicy(10, 100), clock=clock, sleep=clock.sleep))
    seen: list[tuple[str | None, int, float]] = []
    with build_http_client(BASE, transport=httpx.MockTransport(api)) as http:
        client = CaseStatusClient(
            http,
            make_settings(),
            limiter=limiter,
            on_response=lambda r, s, e: seen.append((r, s, e)),
            clock=clock,
            sleep=clock.sleep,
        )
        client.fetch_case_status(RECEIPT)
    assert limiter.acquired == len(api.requests) == 3
    assert limiter.pauses == [1.0]
    assert [(r, s) for r, s, _ in seen] == [(None, 200), (RECEIPT, 429), (RECEIPT, 200)]


def test_secrets_and_tokens_stay_out_of_logs_and_errors(
    harness: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    h = harness(max_retries=1)
    h.api.token_answers.extend([token("tok-secret-a"), token("tok-secret-b")])
    h.api.case_answers.extend(
        [fault(401, "Access Token expired", "x"), httpx.Response(503), httpx.Response(503)]
    )
    with pytest.raises(ServiceUnavailable) as raised:
        h.client.fetch_case_status(RECEIPT)
    shown = caplog.text + str(raised.value) + repr(raised.value) + repr(make_settings())
    for secret in (CLIENT_SECRET, "tok-secret-a", "tok-secret-b"):
        assert secret not in shown


def test_errors_survive_pickling_for_worker_processes() -> None:
    error = RateLimited(429, "policies.ratelimit.SpikeArrestViolation", "Spike", retry_after=1.0)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.status, copy.code, copy.message, copy.retry_after) == (
        RateLimited,
        429,
        "policies.ratelimit.SpikeArrestViolation",
        "Spike",
        1.0,
    )


def test_error_body_parser_handles_both_shapes_and_junk() -> None:
    parse = uscis_api.parse_error_body
    both = {"errors": [{"code": "A", "message": "first"}, {"code": "B", "message": "second"}]}
    assert parse(httpx.Response(422, json=both)) == ("A", "first; second")
    assert parse(httpx.Response(401, json={"fault": {"faultstring": "x"}})) == (None, "x")
    assert parse(httpx.Response(404, content=b"")) == (None, "HTTP 404 Not Found")
    assert parse(httpx.Response(404, content=json.dumps(None).encode())) == (
        None,
        "HTTP 404 Not Found",
    )
