"""Talk to the USCIS Case Status API: one token, permits before every request, typed errors."""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time as dtime
from importlib import metadata
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from pipeline.settings import Secret
from pipeline.sources.uscis.ratelimit import (
    Clock,
    InMemoryRateLimiter,
    RateLimiter,
    RatePolicy,
    Sleep,
)

log = logging.getLogger(__name__)

SANDBOX_BASE_URL: Final = "https://api-int.uscis.gov"
TOKEN_PATH: Final = "/oauth/accesstoken"
CASE_STATUS_PATH: Final = "/case-status/{receipt}"
# 13 characters, no dashes; the spec also admits a '*' in the fourth place.
RECEIPT_PATTERN: Final = re.compile(r"[A-Z]{3}(?:[0-9]{10}|\*[0-9]{9})")
# Status reported to ``on_response`` when no HTTP answer came (timeout, refused connection).
NO_RESPONSE: Final = 0

ENV_BASE_URL: Final = "USCIS_API_BASE_URL"
ENV_CLIENT_ID: Final = "USCIS_CLIENT_ID"
ENV_CLIENT_SECRET: Final = "USCIS_CLIENT_SECRET"
ENV_RATE: Final = "USCIS_API_RATE_PER_SECOND"
ENV_QUOTA: Final = "USCIS_API_DAILY_QUOTA"
ENV_RESET: Final = "USCIS_API_QUOTA_RESET"
ENV_ZONE: Final = "USCIS_API_QUOTA_ZONE"
ENV_TIMEOUT: Final = "USCIS_API_TIMEOUT_S"
ENV_MAX_RETRIES: Final = "USCIS_API_MAX_RETRIES"

OnResponse = Callable[[str | None, int, float], None]


def _package_version() -> str:
    try:
        return metadata.version("uscis-timelines")
    except metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT: Final = f"uscis-timelines/{_package_version()}"


def build_http_client(
    base_url: str, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """Build the one HTTP client used to reach the Case Status API."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        transport=transport,
        follow_redirects=False,
    )


class SettingsError(ValueError):
    """A required setting is missing or a setting cannot be read."""


@dataclass(frozen=True)
class ApiSettings:
    """Everything the Case Status API client needs, read once from the environment.

    The limits default to the figures reported for the sandbox quota (1,000 a day) and
    production rate (10/s); the sandbox is also reported at 5/s, so set
    USCIS_API_RATE_PER_SECOND=5 there. Every limit is configuration because sources disagree.
    """

    client_id: Secret = field(repr=False)
    client_secret: Secret = field(repr=False)
    base_url: str = SANDBOX_BASE_URL
    requests_per_second: int = 10
    daily_quota: int = 1000
    quota_reset_time: dtime = dtime(0, 0)
    quota_reset_zone: str = "America/New_York"
    timeout_s: float = 10.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    token_refresh_margin_s: float = 60.0

    def rate_policy(self) -> RatePolicy:
        """Return the limits a rate limiter must keep for this API."""
        return RatePolicy(
            requests_per_second=self.requests_per_second,
            daily_quota=self.daily_quota,
            reset_time=self.quota_reset_time,
            reset_zone=self.quota_reset_zone,
        )


def api_settings_from_env(env: Mapping[str, str]) -> ApiSettings:
    """Read ApiSettings from environment variables; fail loudly when a credential is missing."""

    def required(name: str) -> Secret:
        value = env.get(name, "").strip()
        if not value:
            raise SettingsError(
                f"{name} is not set: the Case Status API needs the client credentials "
                "of an app registered at developer.uscis.gov"
            )
        return Secret(value)

    def number(name: str, default: int, kind: Callable[[str], Any] = int) -> Any:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = kind(raw)
        except ValueError as exc:
            raise SettingsError(f"{name}={raw!r} is not a valid number") from exc
        if value < 0:
            raise SettingsError(f"{name}={raw!r} must not be negative")
        return value

    reset_raw = env.get(ENV_RESET, "").strip() or "00:00"
    try:
        reset = dtime.fromisoformat(reset_raw)
    except ValueError as exc:
        raise SettingsError(f"{ENV_RESET}={reset_raw!r} is not a time like 00:00") from exc
    zone = env.get(ENV_ZONE, "").strip() or "America/New_York"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"{ENV_ZONE}={zone!r} is not a known time zone") from exc
    rate = number(ENV_RATE, 10)
    if rate < 1:
        raise SettingsError(f"{ENV_RATE} must be at least 1")
    return ApiSettings(
        client_id=required(ENV_CLIENT_ID),
        client_secret=required(ENV_CLIENT_SECRET),
        base_url=env.get(ENV_BASE_URL, "").strip() or SANDBOX_BASE_URL,
        requests_per_second=rate,
        daily_quota=number(ENV_QUOTA, 1000),
        quota_reset_time=reset,
        quota_reset_zone=zone,
        timeout_s=number(ENV_TIMEOUT, 10, float),
        max_retries=number(ENV_MAX_RETRIES, 4),
    )


class UscisApiError(Exception):
    """The Case Status API refused or failed a request; ``message`` is USCIS's own text."""

    def __init__(
        self, status: int | None, code: str | None, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no HTTP answer"
        return f"{self.message} ({where}{', ' + self.code if self.code else ''})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.status, self.code, self.message, self.retry_after))


class CaseNotFound(UscisApiError):
    """404: USCIS knows no such case (or it is protected and deliberately hidden)."""


class InvalidReceipt(UscisApiError):
    """422: the receipt number is malformed or its prefix unknown."""


class AuthenticationFailed(UscisApiError):
    """The credentials were refused, or a fresh token was refused too."""


class RateLimited(UscisApiError):
    """429 spike arrest: too many requests in a second; ``retry_after`` says how long to wait."""


class QuotaExhausted(UscisApiError):
    """429 quota violation: the day's quota is spent at the server."""


class ServiceUnavailable(UscisApiError):
    """5xx, a timeout or a broken connection: the service did not answer usefully."""


class MalformedResponse(UscisApiError):
    """200 whose body is not JSON or has no ``case_status`` object."""


def parse_error_body(response: httpx.Response) -> tuple[str | None, str]:
    """Return (code, message) from any error body USCIS or its gateway sends."""
    fallback = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return None, f"{fallback}: {text[:200]}" if text else fallback
    if not isinstance(body, dict):
        return None, fallback
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        items = [e for e in errors if isinstance(e, dict)]
        messages = [str(e["message"]) for e in items if e.get("message")]
        codes = [str(e["code"]) for e in items if e.get("code")]
        return (codes[0] if codes else None), "; ".join(messages) or fallback
    fault = body.get("fault")
    if isinstance(fault, dict):
        detail = fault.get("detail")
        code = detail.get("errorcode") if isinstance(detail, dict) else None
        return (str(code) if code else None), str(fault.get("faultstring") or fallback)
    if "ErrorCode" in body or "Error" in body:  # Apigee's OAuth policy errors
        return str(body.get("ErrorCode") or "") or None, str(body.get("Error") or fallback)
    if "error" in body:  # RFC 6749 token errors
        message = body.get("error_description") or body.get("error")
        return str(body["error"]), str(message)
    if body.get("message"):
        return None, str(body["message"])
    return None, fallback


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Return the seconds a Retry-After header asks for (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def error_for_response(response: httpx.Response, now: float) -> UscisApiError:
    """Return the typed error that a non-success response stands for."""
    code, message = parse_error_body(response)
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
    if status == 401:
        return AuthenticationFailed(status, code, message)
    if status == 404:
        return CaseNotFound(status, code, message)
    if status == 422:
        return InvalidReceipt(status, code, message)
    if status == 429:
        if "quota" in f"{code} {message}".lower():
            return QuotaExhausted(status, code, message, retry_after)
        return RateLimited(status, code, message, retry_after)
    if status >= 500:
        return ServiceUnavailable(status, code, message, retry_after)
    return UscisApiError(status, code, message, retry_after)


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
    ) -> None:
        self._http = http
        self._settings = settings
        self._limiter = limiter or InMemoryRateLimiter(
            settings.rate_policy(), clock=clock, sleep=sleep
        )
        self._on_response = on_response
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
            log.info("Case Status API refused the access token; fetching a new one")
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
            self._limiter.acquire()
            started = self._clock()
            cause: httpx.TransportError | None = None
            try:
                response = self._http.send(build())
            except httpx.TransportError as exc:
                self._report(receipt, NO_RESPONSE, started)
                cause = exc
                error: UscisApiError = ServiceUnavailable(
                    None, type(exc).__name__, f"No answer from the Case Status API: {exc}"
                )
            else:
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
            attempt += 1
            log.warning(
                "Case Status API failed (%s); retry %d of %d in %.2f s",
                error,
                attempt,
                self._settings.max_retries,
                delay,
            )
            self._sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float | None:
        """Return the pause before the next attempt, or None if the server asks for too long."""
        base, cap = self._settings.backoff_base_s, self._settings.backoff_cap_s
        if retry_after is None:
            return self._rng.uniform(0, min(cap, base * 2**attempt))  # full jitter
        if retry_after > cap:
            return None
        return retry_after + self._rng.uniform(0, base)

    def _report(self, receipt: str | None, status: int, started: float) -> None:
        if self._on_response is not None:
            self._on_response(receipt, status, max(0.0, self._clock() - started))


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
