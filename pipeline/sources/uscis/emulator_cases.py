"""The emulated sandbox's cases: the 50 staging receipts, each with a deterministic life.

Every receipt gets a form, a path of statuses with dates, English and Spanish texts in the
shapes USCIS uses, and a history in one of the date formats seen in the wild.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

RECEIPT = re.compile(r"[A-Z]{3}(?:[0-9]{10}|\*[0-9]{9})")

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


def synthetic_receipts(n: int) -> dict[str, bool]:
    """Return `n` more receipts the emulator knows (for load tests past the sandbox's 50)."""
    return {f"EAC2499{index:06d}": index % 2 == 0 for index in range(1, n + 1)}
