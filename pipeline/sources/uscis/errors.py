"""What the Case Status API can answer besides a case: typed errors read from any error body."""

from __future__ import annotations

import email.utils
from typing import Any

import httpx


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
