"""The emulated sandbox's behaviour: tokens, case statuses, spike arrest, quota, faults.

Independent of the HTTP server that carries it (`pipeline.sources.uscis.emulator`).
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pipeline.sources.uscis.emulator_cases import (
    RECEIPT,
    CasePlan,
    load_sandbox_receipts,
    plan_case,
    synthetic_receipts,
)

FAULT_KINDS = ("ok", "500", "502", "503", "timeout", "slow", "malformed", "429", "quota")


@dataclass
class FaultConfig:
    """Faults injected into case-status answers; rates are fractions drawn from a seeded RNG.

    ``script`` lists faults (see FAULT_KINDS) for the next case requests, before any rate.
    """

    error_rate: float = 0.0
    timeout_rate: float = 0.0
    slow_rate: float = 0.0
    malformed_rate: float = 0.0
    hang_s: float = 30.0
    slow_s: float = 0.5
    seed: int = 0
    script: list[str] = field(default_factory=list)


@dataclass
class EmulatorConfig:
    """How the emulated sandbox behaves; defaults follow the reported sandbox limits.

    Spike arrest works as Apigee's does: the rate is smoothed into slots of 1/rate, and a
    request arriving less than one slot (minus `spike_tolerance_ms`) after the last accepted
    one is refused with 429, however few came in the whole second. `answer_delay_ms` delays
    every case-status answer (real round trips take 150-500 ms).
    """

    client_id: str | None = None  # None accepts any non-empty credentials
    client_secret: str | None = None
    token_ttl_s: float = 1799.0
    advertised_expires_in: str | None = None  # None advertises the real TTL
    requests_per_second: int = 5
    daily_quota: int = 1000
    spike_tolerance_ms: float = 10.0
    answer_delay_ms: float = 0.0
    synthetic_receipts: int = 0  # serve this many more made-up receipts (EAC2499000001, ...)
    extra_receipts: dict[str, bool] = field(default_factory=dict)  # e.g. IOE receipts
    advance_every: int = 0  # reveal one more step every N successful polls; 0 = never
    faults: FaultConfig = field(default_factory=FaultConfig)


@dataclass(frozen=True)
class Reply:
    """One HTTP answer, with an optional delay before it is sent."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def _json(status: int, body: object, **headers: str) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})


def _fault(status: int, text: str, code: str, **headers: str) -> Reply:
    return _json(status, {"fault": {"faultstring": text, "detail": {"errorcode": code}}}, **headers)


def _errors(status: int, code: str, message: str) -> Reply:
    return _json(status, {"errors": [{"code": code, "message": message}]})


class Emulator:
    """The sandbox's behaviour, independent of the HTTP server that carries it."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._catalogue = {
            **load_sandbox_receipts(),
            **synthetic_receipts(self.config.synthetic_receipts),
            **self.config.extra_receipts,
        }
        self._plans: dict[str, CasePlan] = {}
        self._tokens: dict[str, float] = {}
        self._rng = random.Random(self.config.faults.seed)
        self._script: deque[str] = deque(self.config.faults.script)
        self.reset()

    def reset(self) -> None:
        """Forget traffic counters, quota use and poll counts."""
        with self._lock:
            self._per_second: Counter[int] = Counter()
            self._accepted: Counter[int] = Counter()
            self._by_status: Counter[int] = Counter()
            self._by_receipt: Counter[str] = Counter()
            self._by_endpoint: Counter[str] = Counter()
            self._faults_injected: Counter[str] = Counter()
            self._polls: Counter[str] = Counter()
            self._arrivals: list[float] = []
            self._last_accepted = float("-inf")
            self._quota_used = 0
            self._tokens_issued = 0

    def handle(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        arrived_at: float | None = None,
    ) -> Reply:
        """Answer one request; ``headers`` keys are lower-case; ``arrived_at`` its POSIX time."""
        path = unquote(urlsplit(target).path)
        if path.startswith("/_emulator/"):
            return self._control(method, path, body)
        now = time.time() if arrived_at is None else arrived_at
        with self._lock:
            second = int(now)
            self._per_second[second] += 1
            self._by_endpoint[path.split("/")[1] or "/"] += 1
            if path.startswith("/case-status/"):
                self._by_receipt[path.removeprefix("/case-status/")] += 1
            self._arrivals.append(now)
            slot = 1.0 / self.config.requests_per_second
            arrested = now - self._last_accepted < slot - self.config.spike_tolerance_ms / 1000
            if not arrested:
                self._last_accepted = now
                self._accepted[second] += 1
        reply = self._spike_arrest() if arrested else self._route(method, path, headers, body, now)
        with self._lock:
            self._by_status[reply.status] += 1
        return reply

    def _spike_arrest(self) -> Reply:
        rate = self.config.requests_per_second
        return _fault(
            429,
            f"Spike arrest violation. Allowed rate : MessageRate{{messagesPerPeriod=1, "
            f"periodInMicroseconds={1_000_000 // rate}, maxBurstMessageCount=1.0}}",
            "policies.ratelimit.SpikeArrestViolation",
            **{"Retry-After": "1"},
        )

    def _quota_violation(self) -> Reply:
        return _fault(
            429,
            "Rate limit quota violation. Quota limit  exceeded. Identifier : _default",
            "policies.ratelimit.QuotaViolation",
        )

    def _route(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, now: float
    ) -> Reply:
        if path == "/oauth/accesstoken":
            if method != "POST":
                return _errors(405, "METHOD_NOT_ALLOWED", "Use POST to request a token.")
            return self._issue_token(headers, body, now)
        if path.startswith("/case-status/"):
            if method != "GET":
                return _errors(405, "METHOD_NOT_ALLOWED", "Use GET to read a case status.")
            return self._case_status(path.removeprefix("/case-status/"), headers, now)
        return _errors(404, "NOT_FOUND", f"No resource at {path}.")

    def _issue_token(self, headers: Mapping[str, str], body: bytes, now: float) -> Reply:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _fault(400, "Invalid content type", "oauth.v2.InvalidRequest")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type", "")
        if grant != "client_credentials":
            return _fault(400, f"Unsupported grant type : {grant}", "oauth.v2.UnsupportedGrantType")
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        expected_id, expected_secret = self.config.client_id, self.config.client_secret
        if not client_id or (expected_id is not None and client_id != expected_id):
            return _fault(401, "Invalid client identifier {0}", "oauth.v2.InvalidClientIdentifier")
        if not client_secret or (expected_secret is not None and client_secret != expected_secret):
            return _fault(401, "Invalid client credentials", "oauth.v2.InvalidClientIdentifier")
        token = secrets.token_urlsafe(24)
        ttl = self.config.token_ttl_s
        with self._lock:
            self._tokens[token] = now + ttl
            self._tokens_issued += 1
        return _json(
            200,
            {
                "refresh_token_expires_in": "0",
                "api_product_list": "[Case Status API - Sandbox]",
                "api_product_list_json": ["Case Status API - Sandbox"],
                "organization_name": "emulator",
                "developer.email": "developer@example.org",
                "token_type": "BearerToken",
                "issued_at": str(int(now * 1000)),
                "client_id": client_id,
                "access_token": token,
                "application_name": "00000000-0000-0000-0000-000000000000",
                "scope": "",
                "expires_in": self.config.advertised_expires_in or str(int(ttl)),
                "refresh_count": "0",
                "status": "approved",
            },
        )

    def _case_status(self, receipt: str, headers: Mapping[str, str], now: float) -> Reply:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            expires_at = self._tokens.get(token) if scheme.lower() == "bearer" else None
            if expires_at is None:
                return _fault(401, "Invalid access token", "oauth.v2.InvalidAccessToken")
            if now >= expires_at:
                return _fault(
                    401, "Access Token expired", "keymanagement.service.access_token_expired"
                )
            if self._quota_used >= self.config.daily_quota:
                return self._quota_violation()
            self._quota_used += 1
            fault = self._draw_fault()
        delay = {"timeout": self.config.faults.hang_s, "slow": self.config.faults.slow_s}
        reply = self._fault_reply(fault) or self._case_body(receipt, corrupt=fault == "malformed")
        wait = delay.get(fault, 0.0) + self.config.answer_delay_ms / 1000
        return Reply(reply.status, reply.body, reply.headers, wait)

    def _draw_fault(self) -> str:
        if self._script:
            self._faults_injected[self._script[0]] += 1
            return self._script.popleft()
        f = self.config.faults
        draw = self._rng.random()
        for kind, rate in (
            ("5xx", f.error_rate),
            ("timeout", f.timeout_rate),
            ("slow", f.slow_rate),
            ("malformed", f.malformed_rate),
        ):
            if draw < rate:
                chosen = self._rng.choice(["500", "502", "503"]) if kind == "5xx" else kind
                self._faults_injected[chosen] += 1
                return chosen
            draw -= rate
        return "ok"

    def _fault_reply(self, fault: str) -> Reply | None:
        if fault == "500":
            return _errors(500, "INTERNAL_SERVER_ERROR", "An unexpected error occurred.")
        if fault == "502":
            return _fault(502, "Bad Gateway", "messaging.adaptors.http.flow.BadGateway")
        if fault == "503":
            return Reply(503)  # the sandbox outside its hours: no body at all
        if fault == "429":
            return self._spike_arrest()
        if fault == "quota":
            return self._quota_violation()
        return None

    def _case_body(self, receipt: str, *, corrupt: bool) -> Reply:
        if not RECEIPT.fullmatch(receipt):
            return _errors(
                422, "INVALID_RECEIPT_NUMBER", "Receipt number is not formatted correctly."
            )
        if receipt not in self._catalogue:
            return _errors(404, "CASE_NOT_FOUND", "No case was found for this receipt number.")
        with self._lock:
            plan = self._plans.get(receipt)
            if plan is None:
                plan = self._plans[receipt] = plan_case(receipt, self._catalogue[receipt])
            step = self.config.advance_every
            shown = plan.initially_shown + (self._polls[receipt] // step if step else 0)
            self._polls[receipt] += 1
        reply = _json(200, plan.body(shown))
        return Reply(200, reply.body[: len(reply.body) // 2], reply.headers) if corrupt else reply

    def stats(self) -> dict[str, Any]:
        """Return traffic counters: per wall-clock second, by status, by receipt."""
        with self._lock:
            histogram = Counter(self._per_second.values())
            times = sorted(self._arrivals)
            gaps = [b - a for a, b in itertools.pairwise(times)]
            return {
                "arrivals": times,
                "min_gap_ms": round(1000 * min(gaps), 3) if gaps else None,
                "total_requests": sum(self._per_second.values()),
                "max_requests_per_second": max(self._per_second.values(), default=0),
                "requests_per_second_histogram": {str(k): v for k, v in sorted(histogram.items())},
                "requests_per_second": {str(k): v for k, v in sorted(self._per_second.items())},
                "by_status": {str(k): v for k, v in sorted(self._by_status.items())},
                "by_receipt": dict(sorted(self._by_receipt.items())),
                "by_endpoint": dict(sorted(self._by_endpoint.items())),
                "faults_injected": dict(sorted(self._faults_injected.items())),
                "quota_used": self._quota_used,
                "tokens_issued": self._tokens_issued,
            }

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        if method == "GET" and path == "/_emulator/stats":
            return _json(200, self.stats())
        if method != "POST":
            return _errors(
                405, "METHOD_NOT_ALLOWED", "Control endpoints other than stats use POST."
            )
        try:
            changes = json.loads(body or b"{}")
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            if path == "/_emulator/faults":
                return _json(200, self._update(self.config.faults, changes))
            if path == "/_emulator/config":
                return _json(200, self._update(self.config, changes))
        except (ValueError, TypeError) as exc:
            return _errors(400, "BAD_CONTROL_REQUEST", str(exc))
        if path == "/_emulator/reset":
            self.reset()
            return _json(200, self.stats())
        return _errors(404, "NOT_FOUND", f"No control endpoint at {path}.")

    def _update(self, target: FaultConfig | EmulatorConfig, changes: dict[str, Any]) -> Any:
        allowed = {f.name for f in fields(target)} - {"faults", "extra_receipts"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        bad = set(changes.get("script", [])) - set(FAULT_KINDS)
        if bad:
            raise ValueError(f"unknown faults in script: {', '.join(sorted(bad))}")
        for name, value in changes.items():
            current = getattr(target, name)
            widened = isinstance(current, float) and isinstance(value, int)
            if current is not None and not (isinstance(value, type(current)) or widened):
                raise ValueError(f"{name} must be a {type(current).__name__}")
        with self._lock:
            for name, value in changes.items():
                setattr(target, name, value)
            if "seed" in changes:
                self._rng = random.Random(changes["seed"])
            if "script" in changes:
                self._script = deque(changes["script"])
            return asdict(target)
