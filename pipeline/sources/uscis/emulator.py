"""Emulate the developer.uscis.gov sandbox on 127.0.0.1: tokens, case statuses, limits, faults.

Start it in-process with ``EmulatorServer(config).start()`` (or as a context manager), or
block with ``serve_emulator(port)``. Control it over HTTP: ``POST /_emulator/faults``,
``POST /_emulator/config``, ``POST /_emulator/reset`` and ``GET /_emulator/stats``.
"""

from __future__ import annotations

import csv
import json
import logging
import random
import re
import secrets
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

RECEIPT = re.compile(r"[A-Z]{3}(?:[0-9]{10}|\*[0-9]{9})")
FAULT_KINDS = ("ok", "500", "502", "503", "timeout", "slow", "malformed", "429", "quota")

FORMS = {
    "I-130": "Petition for Alien Relative",
    "I-485": "Application to Register Permanent Residence or Adjust Status",
    "I-765": "Application for Employment Authorization",
    "I-131": "Application for Travel Document",
    "I-140": "Immigrant Petition for Alien Workers",
    "I-129": "Petition for a Nonimmigrant Worker",
    "N-400": "Application for Naturalization",
    "I-751": "Petition to Remove Conditions on Residence",
    "I-90": "Application to Replace Permanent Resident Card",
}
_BIO = ["received", "biometrics", "fingerprints"]
PATHS = {
    "I-130": ["received", "review", "rfe", "rfe_response", "approved"],
    "I-485": [*_BIO, "rfe", "rfe_response", "interview", "approved", "card_produced", "mailed"],
    "I-765": ["received", "biometrics", "approved", "card_produced", "mailed"],
    "I-131": [*_BIO, "approved"],
    "I-140": ["received", "review", "approved"],
    "I-129": ["received", "rfe", "rfe_response", "approved"],
    "N-400": [*_BIO, "interview", "approved"],
    "I-751": [*_BIO, "transferred", "approved", "card_produced", "mailed"],
    "I-90": [*_BIO, "card_produced", "mailed"],
}
_ADDRESS = (
    'If you move, go to <a href="https://egov.uscis.gov/coa/displayCOAForm.do" '
    'target="_blank">www.uscis.gov/addresschange</a> to give us your new mailing address.'
)
_CASE = "your Form {form}, {name}, Receipt Number {receipt}"
# step: (title_en, description_en, history_en, title_es, description_es, history_es)
STEPS: dict[str, tuple[str, str, str, str, str, str]] = {
    "received": (
        "Case Was Received",
        f"On {{on}}, we received {_CASE}, and sent you the receipt notice that describes how "
        f"we will process your case. Please follow the instructions in the notice. {_ADDRESS}",
        "We received your Form {form}, {name}.",
        "Caso Fue Recibido",
        "El {on_es}, recibimos su Formulario {form}, Número de Recibo {receipt}, y le enviamos "
        "el aviso de recibo.",
        "Recibimos su Formulario {form}.",
    ),
    "biometrics": (
        "Biometrics Appointment Was Scheduled",
        f"As of {{on}}, we scheduled your biometrics appointment for {_CASE}. We mailed you a "
        "notice with the date, time and place. If you can&#39;t attend, see "
        '<a href="https://www.uscis.gov/biometrics" target="_blank">www.uscis.gov/biometrics</a>.',
        "We scheduled your biometrics appointment.",
        "Cita de Biométricos Fue Programada",
        "El {on_es}, programamos su cita biométrica para el Número de Recibo {receipt}.",
        "Programamos su cita biométrica.",
    ),
    "fingerprints": (
        "Case Was Updated To Show Fingerprints Were Taken",
        f"On {{on}}, we took fingerprints for {_CASE}. We will let you know if we need more.",
        "We took your fingerprints.",
        "Caso Fue Actualizado Para Mostrar Que Huellas Dactilares Fueron Tomadas",
        "El {on_es}, tomamos sus huellas dactilares para el Número de Recibo {receipt}.",
        "Tomamos sus huellas dactilares.",
    ),
    "rfe": (
        "Request for Additional Evidence Was Sent",
        f"On {{on}}, we sent a request for evidence for {_CASE}. The request explains what we "
        "need from you. We will not act on your case until we receive it or the deadline passes.",
        "We sent you a request for evidence.",
        "Solicitud de Evidencia Adicional Fue Enviada",
        "El {on_es}, le enviamos una solicitud de evidencia para el Número de Recibo {receipt}.",
        "Le enviamos una solicitud de evidencia.",
    ),
    "rfe_response": (
        "Response To USCIS' Request For Evidence Was Received",
        f"On {{on}}, we received your response to USCIS&#39; request for evidence for {_CASE}. "
        "USCIS has begun working on your case again.",
        "We received your response to our request for evidence.",
        "Respuesta a Solicitud de Evidencia de USCIS Fue Recibida",
        "El {on_es}, recibimos su respuesta a nuestra solicitud de evidencia ({receipt}).",
        "Recibimos su respuesta a nuestra solicitud de evidencia.",
    ),
    "review": (
        "Case Is Being Actively Reviewed By USCIS",
        f"As of {{on}}, we are actively reviewing {_CASE}. Our records show nothing is "
        "outstanding at this time. We will let you know if we need more information.",
        "We began actively reviewing your case.",
        "Caso Está Siendo Revisado Activamente Por USCIS",
        "Al {on_es}, estamos revisando activamente su caso, Número de Recibo {receipt}.",
        "Comenzamos a revisar activamente su caso.",
    ),
    "interview": (
        "Interview Was Scheduled",
        f"On {{on}}, we scheduled an interview for {_CASE}. We mailed you an interview notice. "
        "Please follow the instructions in the notice.",
        "We scheduled an interview for your case.",
        "Entrevista Fue Programada",
        "El {on_es}, programamos una entrevista para el Número de Recibo {receipt}.",
        "Programamos una entrevista.",
    ),
    "transferred": (
        "Case Was Transferred And A New Office Has Jurisdiction",
        f"On {{on}}, we transferred {_CASE}, to another office for processing. We sent you a "
        "notice that tells you about the transfer.",
        "We transferred your case to another office.",
        "Caso Fue Transferido Y Una Nueva Oficina Tiene Jurisdicción",
        "El {on_es}, transferimos su caso ({receipt}) a otra oficina.",
        "Transferimos su caso a otra oficina.",
    ),
    "approved": (
        "Case Was Approved",
        f"On {{on}}, we approved {_CASE}. We sent you an approval notice. Please follow the "
        f"instructions in the notice. {_ADDRESS}",
        "We approved your Form {form}, {name}.",
        "Caso Fue Aprobado",
        "El {on_es}, aprobamos su Formulario {form}, Número de Recibo {receipt}.",
        "Aprobamos su Formulario {form}.",
    ),
    "card_produced": (
        "New Card Is Being Produced",
        "On {on}, we ordered your new card for Receipt Number {receipt}, and will mail it to "
        f"the address you gave us. {_ADDRESS}",
        "We ordered your new card.",
        "Nueva Tarjeta Está Siendo Producida",
        "El {on_es}, ordenamos su nueva tarjeta para el Número de Recibo {receipt}.",
        "Ordenamos su nueva tarjeta.",
    ),
    "mailed": (
        "Card Was Mailed To Me",
        "On {on}, we mailed your new card for Receipt Number {receipt}, to the address you gave "
        "us. The U.S. Postal Service (USPS) is responsible for delivering your card.",
        "We mailed your new card.",
        "Tarjeta Fue Enviada Por Correo",
        "El {on_es}, enviamos por correo su nueva tarjeta ({receipt}).",
        "Enviamos su nueva tarjeta por correo.",
    ),
    "denied": (
        "Case Was Denied",
        f"On {{on}}, we denied {_CASE}. We sent you a decision notice that explains why. "
        "Please follow the instructions in the notice.",
        "We denied your Form {form}, {name}.",
        "Caso Fue Denegado",
        "El {on_es}, denegamos su Formulario {form}, Número de Recibo {receipt}.",
        "Denegamos su Formulario {form}.",
    ),
}
_LATEST_EVENT = datetime(2025, 6, 30, 17)
_MESES = "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"


@dataclass(frozen=True)
class CasePlan:
    """The whole deterministic life of one emulated case; polls reveal a prefix of it."""

    receipt: str
    form: str
    steps: tuple[tuple[str, datetime], ...]
    has_history: bool
    initially_shown: int
    hist_format: str  # "iso", "us" or "mixed"
    newest_first: bool

    def body(self, shown: int) -> dict[str, Any]:
        """Return the API body when the first ``shown`` steps have happened."""
        shown = max(1, min(shown, len(self.steps)))
        key, when = self.steps[shown - 1]
        text = _texts(key, when, self)
        status: dict[str, Any] = {"receiptNumber": self.receipt, "formType": self.form}
        if not self.receipt.startswith("IOE"):  # ELIS answers omit both dates
            status["submittedDate"] = self.steps[0][1].strftime("%m-%d-%Y %H:%M:%S")
            status["modifiedDate"] = when.strftime("%m-%d-%Y %H:%M:%S")
        status |= {
            "current_case_status_text_en": text[0],
            "current_case_status_desc_en": text[1],
            "current_case_status_text_es": text[3],
            "current_case_status_desc_es": text[4],
            "hist_case_status": self._history(shown) if self.has_history else None,
        }
        return {"case_status": status, "message": "Query was successful"}

    def _history(self, shown: int) -> list[dict[str, str]]:
        entries = []
        for index, (key, when) in enumerate(self.steps[: shown - 1]):
            text = _texts(key, when, self)
            us = self.hist_format == "us" or (self.hist_format == "mixed" and index % 2 == 1)
            date = when.strftime("%m-%d-%Y %H:%M:%S") if us else when.strftime("%Y-%m-%d")
            entries.append(
                {"date": date, "completed_text_en": text[2], "completed_text_es": text[5]}
            )
        return entries[::-1] if self.newest_first else entries


def _texts(key: str, when: datetime, plan: CasePlan) -> tuple[str, ...]:
    values = {
        "on": f"{when:%B} {when.day}, {when.year}",
        "on_es": f"{when.day} de {_MESES.split()[when.month - 1]} de {when.year}",
        "form": plan.form,
        "name": FORMS[plan.form],
        "receipt": plan.receipt,
    }
    return tuple(template.format(**values) for template in STEPS[key])


def plan_case(receipt: str, has_history: bool) -> CasePlan:
    """Return the deterministic case plan for one receipt number."""
    rng = random.Random(f"uscis-emulator:{receipt}")
    form = rng.choice(sorted(FORMS))
    path = list(PATHS[form])
    if rng.random() < 0.15 and "approved" in path:
        path = [*path[: path.index("approved")], "denied"]
    when = datetime(2022, 1, 3, 8) + timedelta(days=rng.randint(0, 800))
    steps = []
    for key in path:
        when = when.replace(hour=rng.randint(7, 19), minute=rng.randint(0, 59), second=0)
        steps.append((key, when + timedelta(seconds=rng.randint(0, 59))))
        when += timedelta(days=rng.randint(7, 120))
    overshoot = steps[-1][1] - _LATEST_EVENT  # keep every event in the past
    if overshoot > timedelta(0):
        steps = [(key, at - overshoot) for key, at in steps]
    low = 2 if has_history else 1
    return CasePlan(
        receipt=receipt,
        form=form,
        steps=tuple(steps),
        has_history=has_history,
        initially_shown=rng.randint(min(low, len(steps)), len(steps)),
        hist_format=rng.choice(["iso", "iso", "iso", "us", "mixed"]),
        newest_first=rng.random() < 0.3,
    )


def load_sandbox_receipts() -> dict[str, bool]:
    """Return the 50 sandbox receipt numbers, each with whether it carries history."""
    path = resources.files("pipeline") / "reference" / "sandbox_receipts.csv"
    with path.open(encoding="utf-8") as handle:
        return {
            row["receipt_number"]: row["has_history"] == "yes" for row in csv.DictReader(handle)
        }


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
    """How the emulated sandbox behaves; defaults follow the reported sandbox limits."""

    client_id: str | None = None  # None accepts any non-empty credentials
    client_secret: str | None = None
    token_ttl_s: float = 1799.0
    advertised_expires_in: str | None = None  # None advertises the real TTL
    requests_per_second: int = 5
    daily_quota: int = 1000
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
        self._catalogue = {**load_sandbox_receipts(), **self.config.extra_receipts}
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
            self._quota_used = 0
            self._tokens_issued = 0

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Answer one request; ``headers`` keys are lower-case."""
        path = unquote(urlsplit(target).path)
        if path.startswith("/_emulator/"):
            return self._control(method, path, body)
        now = time.time()
        with self._lock:
            second = int(now)
            self._per_second[second] += 1
            self._by_endpoint[path.split("/")[1] or "/"] += 1
            if path.startswith("/case-status/"):
                self._by_receipt[path.removeprefix("/case-status/")] += 1
            arrested = self._accepted[second] >= self.config.requests_per_second
            if not arrested:
                self._accepted[second] += 1
        reply = self._spike_arrest() if arrested else self._route(method, path, headers, body, now)
        with self._lock:
            self._by_status[reply.status] += 1
        return reply

    def _spike_arrest(self) -> Reply:
        rate = self.config.requests_per_second
        return _fault(
            429,
            f"Spike arrest violation. Allowed rate : MessageRate{{messagesPerPeriod={rate}, "
            "periodInMicroseconds=1000000, maxBurstMessageCount=1.0}",
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
        return Reply(reply.status, reply.body, reply.headers, delay.get(fault, 0.0))

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
            return {
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


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        super().__init__(address, _Handler)
        self.emulator = emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client hangs up (the timeout fault makes them)."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uscis-sandbox-emulator"
    timeout = 30  # close idle keep-alive connections
    disable_nagle_algorithm = True  # headers and body go in two writes; avoid 40 ms stalls

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        server = cast(_HttpServer, self.server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            reply = server.emulator.handle(method, self.path, headers, body)
        except Exception:  # an emulator bug must still produce an answer
            log.exception("emulator failed on %s %s", method, self.path)
            reply = _errors(500, "EMULATOR_BUG", "The emulator failed; see its log.")
        if reply.delay_s and server.emulator.stopping.wait(reply.delay_s):
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("emulator: " + format, *args)


class EmulatorServer:
    """The emulator on a real socket; port 0 picks a free port, read back from ``port``."""

    def __init__(
        self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.emulator = Emulator(config)
        self._http = _HttpServer((host, port), self.emulator)
        self._thread: threading.Thread | None = None
        self._state_lock = threading.Lock()
        self._serving = False

    @property
    def port(self) -> int:
        """Return the bound TCP port."""
        return int(self._http.server_address[1])

    @property
    def base_url(self) -> str:
        """Return the base URL to give an API client."""
        return f"http://{self._http.server_address[0]!s}:{self.port}"

    def start(self) -> EmulatorServer:
        """Serve in a background daemon thread and return self."""
        with self._state_lock:
            self._serving = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop`` is called from another thread."""
        with self._state_lock:
            if self.emulator.stopping.is_set():
                return
            self._serving = True
        self._http.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        """Stop serving, release hung requests and close the socket."""
        with self._state_lock:
            self.emulator.stopping.set()
            serving, self._serving = self._serving, False
        if serving:  # safe even if serve_forever has not started its loop yet
            self._http.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._http.server_close()

    def __enter__(self) -> EmulatorServer:
        return self if self._serving else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve_emulator(
    port: int,
    *,
    host: str = "127.0.0.1",
    config: EmulatorConfig | None = None,
    on_ready: Callable[[EmulatorServer], None] | None = None,
) -> None:
    """Serve the emulator until interrupted (the ``timelines emulator`` command)."""
    server = EmulatorServer(config, host=host, port=port)
    log.info("USCIS sandbox emulator listening on %s", server.base_url)
    if on_ready is not None:
        on_ready(server)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
