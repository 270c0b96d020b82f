"""Talk to the USCIS Case Status API: one token, a paced slot before every request, typed errors.

The client is thread-safe: several threads may fetch at once through one client (one token,
renewed once for all of them) and one rate limiter (which spaces their requests).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any, Final

import httpx

from pipeline.settings import Secret
from pipeline.sources.uscis.api_settings import (
    ENV_BASE_URL,
    ENV_CLIENT_ID,
    ENV_CLIENT_SECRET,
    ENV_IN_FLIGHT,
    ENV_MARGIN,
    ENV_MAX_RETRIES,
    ENV_MIN_INTERVAL,
    ENV_QUOTA,
    ENV_RATE,
    ENV_RESET,
    ENV_TIMEOUT,
    ENV_ZONE,
    SANDBOX_BASE_URL,
    ApiSettings,
    SettingsError,
    api_settings_from_env,
)
from pipeline.sources.uscis.errors import (
    AuthenticationFailed,
    CaseNotFound,
    InvalidReceipt,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
    ServiceUnavailable,
    UscisApiError,
    error_for_response,
    parse_error_body,
    parse_retry_after,
)
from pipeline.sources.uscis.ratelimit import (
    Clock,
    InMemoryRateLimiter,
    RateLimiter,
    Sleep,
)
from pipeline.sources.uscis.send_gate import SendGate

__all__ = [
    "ENV_BASE_URL", "ENV_CLIENT_ID", "ENV_CLIENT_SECRET", "ENV_IN_FLIGHT", "ENV_MARGIN",
    "ENV_MAX_RETRIES", "ENV_MIN_INTERVAL", "ENV_QUOTA", "ENV_RATE", "ENV_RESET", "ENV_TIMEOUT",
    "ENV_ZONE", "NO_RESPONSE", "RECEIPT_PATTERN", "SANDBOX_BASE_URL", "ApiSettings",
    "AuthenticationFailed", "CaseNotFound", "CaseStatusClient", "InvalidReceipt",
    "MalformedResponse", "QuotaExhausted", "RateLimited", "Secret", "ServiceUnavailable",
    "SettingsError", "UscisApiError", "api_settings_from_env", "build_http_client",
    "error_for_response", "parse_error_body", "parse_retry_after",
]

log = logging.getLogger(__name__)

TOKEN_PATH: Final = "/oauth/accesstoken"
CASE_STATUS_PATH: Final = "/case-status/{receipt}"
# 13 characters, no dashes; the spec also admits a '*' in the fourth place.
RECEIPT_PATTERN: Final = re.compile(r"[A-Z]{3}(?:[0-9]{10}|\*[0-9]{9})")
# Status reported to ``on_response`` when no HTTP answer came (timeout, refused connection).
NO_RESPONSE: Final = 0

OnResponse = Callable[[str | None, int, float], None]


def _package_version() -> str:
    try:
        return metadata.version("uscis-timelines")
    except metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT: Final = f"uscis-timelines/{_package_version()}"


def build_http_client(
    base_url: str,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
    *,
    max_connections: int = 10,
) -> httpx.Client:
    """Build the one HTTP client used to reach the Case Status API."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=False,
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )


class CaseStatusClient:
    """Fetch case statuses politely: one reused token, a permit per request, bounded retries."""

    def __init__(
        self,
        http: httpx.Client,
        settings: ApiSettings,
        *,
        limiter: RateLimiter | None = None,
        on_response: OnResponse | None = None,
        clock: Clock = time.time,
        sleep: Sleep = time.sleep,
        rng: random.Random | None = None,
        send_gate: SendGate | None = None,
    ) -> None:
        self._http = http
        self._gate = send_gate
        self._settings = settings
        self._limiter = limiter or InMemoryRateLimiter(
            settings.rate_policy(), clock=clock, sleep=sleep
        )
        self.on_response = on_response
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_renew_at = 0.0

    def fetch_case_status(self, receipt: str) -> dict[str, Any]:
        """Return the raw JSON body (with ``case_status``) for one receipt number."""
        if not RECEIPT_PATTERN.fullmatch(receipt):
            raise InvalidReceipt(
                None, "local_format_check", "A receipt number is 3 letters and 10 digits"
            )
        token = self._current_token()
        response = self._send(lambda: self._case_request(receipt, token), receipt)
        if response.status_code == 401:
            log.info("%s refused the access token; fetching a new one", self._settings.server)
            token = self._renew_token(stale=token)
            response = self._send(lambda: self._case_request(receipt, token), receipt)
        if response.status_code != 200:
            raise error_for_response(response, self._clock())
        return _case_body(response)

    def _case_request(self, receipt: str, token: str) -> httpx.Request:
        return self._http.build_request(
            "GET",
            CASE_STATUS_PATH.format(receipt=receipt),
            headers={"Authorization": f"Bearer {token}"},
        )

    def _token_request(self) -> httpx.Request:
        return self._http.build_request(
            "POST",
            TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": self._settings.client_id.reveal(),
                "client_secret": self._settings.client_secret.reveal(),
            },
        )

    def _current_token(self) -> str:
        with self._token_lock:
            if self._token is None or self._clock() >= self._token_renew_at:
                self._token = self._fetch_token()
            return self._token

    def _renew_token(self, stale: str) -> str:
        with self._token_lock:
            if self._token in (None, stale):  # another thread may have renewed it already
                self._token = self._fetch_token()
            assert self._token is not None
            return self._token

    def _fetch_token(self) -> str:
        """Fetch a new access token and remember when to renew it."""
        asked_at = self._clock()
        response = self._send(self._token_request, None)
        if response.status_code != 200:
            error = error_for_response(response, self._clock())
            raise AuthenticationFailed(
                response.status_code, error.code, f"Token request refused: {error.message}"
            )
        try:
            body = response.json()
            token = str(body["access_token"])
            ttl = float(body["expires_in"])  # Apigee sends a string such as "1799"
        except (ValueError, KeyError, TypeError) as exc:
            raise AuthenticationFailed(
                200, "malformed_token", "Token response lacks access_token or expires_in"
            ) from exc
        if not token:
            raise AuthenticationFailed(200, "malformed_token", "Token response has no token")
        # Renew shortly before expiry; for very short-lived tokens, at 90 % of their life.
        margin = min(self._settings.token_refresh_margin_s, ttl / 10)
        self._token_renew_at = asked_at + ttl - margin
        return token

    def _send(self, build: Callable[[], httpx.Request], receipt: str | None) -> httpx.Response:
        """Send with a permit per attempt; retry spike arrests, 5xx and network failures."""
        attempt = 0
        while True:
            request = build()
            self._limiter.acquire()
            gate = self._gate
            ticket = gate.wait_turn() if gate is not None else 0.0
            request.extensions["trace"] = self._tracer(gate, ticket)
            started = self._clock()
            cause: httpx.TransportError | None = None
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                if gate is not None:
                    gate.sent(ticket)  # it may have gone out; free the gate either way
                self._mark_sent()
                self._report(receipt, NO_RESPONSE, started)
                cause = exc
                error: UscisApiError = ServiceUnavailable(
                    None, type(exc).__name__, f"No answer from {self._settings.server}: {exc}"
                )
            else:
                if gate is not None:
                    gate.sent(ticket)
                    if response.status_code != 429:
                        gate.eased()
                self._report(receipt, response.status_code, started)
                if response.status_code != 429 and response.status_code < 500:
                    return response
                error = error_for_response(response, self._clock())
                if isinstance(error, QuotaExhausted):
                    self._limiter.record_quota_exhausted()
                    raise error
            delay = self._backoff(attempt, error.retry_after)
            if attempt >= self._settings.max_retries or delay is None:
                raise error from cause
            if error.retry_after is not None:
                self._limiter.record_retry_after(error.retry_after)
            if isinstance(error, RateLimited) and gate is not None:
                gate.widen(ticket)  # the server allows less than this pace: slow down
            attempt += 1
            log.warning(
                "%s failed (%s); retry %d of %d in %.2f s",
                self._settings.server,
                error,
                attempt,
                self._settings.max_retries,
                delay,
            )
            self._sleep(delay)

    def _tracer(self, gate: SendGate | None, ticket: float) -> Callable[[str, object], None]:
        """Tell the gate and the shared limiter when the request's headers went out."""
        def trace(event: str, info: object) -> None:
            if event.endswith("send_request_headers.complete"):
                if gate is not None:
                    gate.sent(ticket)
                self._mark_sent()

        return trace

    def _mark_sent(self) -> None:
        """Tell a shared limiter the request went out (it then permits the next sender)."""
        mark_sent = getattr(self._limiter, "mark_sent", None)
        if mark_sent is not None:
            mark_sent()

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Return the pause before the next attempt, or None if the server asks for too long."""
        base, cap = self._settings.backoff_base_s, self._settings.backoff_cap_s
        if retry_after is None:
            return self._rng.uniform(0, min(cap, base * 2**attempt))  # full jitter
        if retry_after > cap:
            return None
        return retry_after + self._rng.uniform(0, base)

    def _report(self, receipt: str | None, status: int, started: float) -> None:
        if self.on_response is not None:
            self.on_response(receipt, status, max(0.0, self._clock() - started))


def _case_body(response: httpx.Response) -> dict[str, Any]:
    """Return the JSON body of a 200 answer, or raise MalformedResponse."""
    try:
        body = response.json()
    except ValueError as exc:
        raise MalformedResponse(
            200, "invalid_json", "Case Status API sent a body that is not JSON"
        ) from exc
    if not isinstance(body, dict) or not isinstance(body.get("case_status"), dict):
        raise MalformedResponse(
            200, "missing_case_status", "Case Status API body has no case_status object"
        )
    return body
