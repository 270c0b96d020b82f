"""Settings of the Case Status API client, parsed from `Settings.env` by one typed reader.

Defaults follow developer.uscis.gov's production page: 10 requests a second, 10,000 a day,
reset at midnight GMT. Other sources report 150,000 or 400,000 a day and US Eastern time, and
the sandbox 5/s and 1,000 a day: every limit is configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.settings import Secret
from pipeline.sources.uscis.ratelimit import (
    DEFAULT_MARGIN_S,
    DEFAULT_QUOTA,
    DEFAULT_RATE,
    DEFAULT_ZONE,
    RatePolicy,
)

SANDBOX_BASE_URL: Final = "https://api-int.uscis.gov"

ENV_BASE_URL: Final = "USCIS_API_BASE_URL"
ENV_CLIENT_ID: Final = "USCIS_CLIENT_ID"
ENV_CLIENT_SECRET: Final = "USCIS_CLIENT_SECRET"
ENV_RATE: Final = "USCIS_API_RATE_PER_SECOND"
ENV_MIN_INTERVAL: Final = "USCIS_API_MIN_INTERVAL_MS"
ENV_MARGIN: Final = "USCIS_API_PACING_MARGIN_MS"
ENV_IN_FLIGHT: Final = "USCIS_API_MAX_IN_FLIGHT"
ENV_QUOTA: Final = "USCIS_API_DAILY_QUOTA"
ENV_RESET: Final = "USCIS_API_QUOTA_RESET"
ENV_ZONE: Final = "USCIS_API_QUOTA_ZONE"
ENV_TIMEOUT: Final = "USCIS_API_TIMEOUT_S"
ENV_MAX_RETRIES: Final = "USCIS_API_MAX_RETRIES"
DEFAULT_IN_FLIGHT: Final = 6


class SettingsError(ValueError):
    """A required setting is missing or a setting cannot be read."""


@dataclass(frozen=True)
class ApiSettings:
    """Everything the Case Status API client needs, read once from the environment.

    Requests leave at least `min_interval_ms` apart (default 1000/rate + `pacing_margin_ms`),
    with at most `max_in_flight` waiting for their answers at once.
    """

    client_id: Secret = field(repr=False)
    client_secret: Secret = field(repr=False)
    base_url: str = SANDBOX_BASE_URL
    requests_per_second: int = DEFAULT_RATE
    daily_quota: int = DEFAULT_QUOTA
    quota_reset_time: dtime = dtime(0, 0)
    quota_reset_zone: str = DEFAULT_ZONE
    timeout_s: float = 10.0
    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    token_refresh_margin_s: float = 60.0
    min_interval_ms: float | None = None
    pacing_margin_ms: float = DEFAULT_MARGIN_S * 1000
    max_in_flight: int = DEFAULT_IN_FLIGHT

    def rate_policy(self) -> RatePolicy:
        """Return the limits a rate limiter must keep for this API."""
        return RatePolicy(
            requests_per_second=self.requests_per_second,
            daily_quota=self.daily_quota,
            reset_time=self.quota_reset_time,
            reset_zone=self.quota_reset_zone,
            margin_s=self.pacing_margin_ms / 1000,
            min_interval_s=None if self.min_interval_ms is None else self.min_interval_ms / 1000,
        )

    @property
    def server(self) -> str:
        """Name the configured server in words: 'the Case Status API at <host>'."""
        parts = urlsplit(self.base_url)
        return f"the Case Status API at {parts.netloc or self.base_url}"


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

    def number(name: str, default: Any, kind: Callable[[str], Any] = int) -> Any:
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
    zone = env.get(ENV_ZONE, "").strip() or DEFAULT_ZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"{ENV_ZONE}={zone!r} is not a known time zone") from exc
    rate = number(ENV_RATE, DEFAULT_RATE)
    if rate < 1:
        raise SettingsError(f"{ENV_RATE} must be at least 1")
    in_flight = number(ENV_IN_FLIGHT, DEFAULT_IN_FLIGHT)
    if in_flight < 1:
        raise SettingsError(f"{ENV_IN_FLIGHT} must be at least 1")
    return ApiSettings(
        client_id=required(ENV_CLIENT_ID),
        client_secret=required(ENV_CLIENT_SECRET),
        base_url=env.get(ENV_BASE_URL, "").strip() or SANDBOX_BASE_URL,
        requests_per_second=rate,
        daily_quota=number(ENV_QUOTA, DEFAULT_QUOTA),
        quota_reset_time=reset,
        quota_reset_zone=zone,
        timeout_s=number(ENV_TIMEOUT, 10, float),
        max_retries=number(ENV_MAX_RETRIES, 4),
        min_interval_ms=number(ENV_MIN_INTERVAL, None, float),
        pacing_margin_ms=number(ENV_MARGIN, DEFAULT_MARGIN_S * 1000, float),
        max_in_flight=in_flight,
    )
