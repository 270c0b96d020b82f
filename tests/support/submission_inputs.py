"""Inputs of every kind a submitter has, built from the reference payloads (test helper)."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.conftest import REFERENCE_PAYLOADS

APPLICANT = "GONZALEZ-TESTER, MARIA"
REPRESENTATIVE = "OKONKWO-SAMPLE, CHIDI"
EMAIL = "maria.tester@example.org"
A_NUMBER = "A123456789"


def reference(name: str, part: str = "body") -> Any:
    """A part of a reference payload file, deep-copied."""
    return copy.deepcopy(json.loads((REFERENCE_PAYLOADS / name).read_text())[part])


def api_answer() -> dict[str, Any]:
    """The Case Status API answer with history (LIN9999106499, I-485, approved)."""
    answer: dict[str, Any] = reference("torch_case_status_success_with_history.json")
    return answer


def myuscis_pair(receipt: str = "IOE0900000002", form: str = "I-485") -> list[dict[str, Any]]:
    """myUSCIS cases/{r} + case_status/{r} answers, with names, an e-mail and an A-number inside."""
    detail = reference("myuscis_case_detail.json")
    detail["data"] |= {"receiptNumber": receipt, "formType": form, "applicantName": APPLICANT,
                       "representativeName": REPRESENTATIVE}
    status = reference("myuscis_case_status.json")
    status["data"] |= {"receiptNumber": receipt, "formType": form,
                       "statusText": f"As of July 9, 2024, ... {A_NUMBER} ... write to {EMAIL}"}
    status["data"]["historicalCaseStatuses"][0]["statusTitle"] = "Case Was Received"
    return [detail, status]


def simplified(receipt: str = "MSC2490000123", form: str = "I-765") -> dict[str, Any]:
    """A simplified history whose descriptions hold an e-mail and an A-number."""
    return {
        "receiptNumber": receipt, "formType": form, "submittedDate": "2024-01-05",
        "events": [
            {"date": "2024-01-05", "description": f"We received your Form I-765 ({A_NUMBER})."},
            {"date": "2024-02-01", "description": f"Fingerprints taken; mail me at {EMAIL}"},
            {"date": "2024-04-02", "description": "Case Was Approved"},
        ],
    }


TYPED = (
    "form: I-765\noffice: NBC\nreceived: 1/5/24\nbiometrics: 2/1/24\napproved: 4/2/24\n"
    f"name: {APPLICANT}\nemail: {EMAIL}\n"
)
CSV = (
    "Name,Email,form_type,office,received_date,biometrics_date,approved_date,Notes\r\n"
    f'"{APPLICANT}",{EMAIL},I-485,TSC,3/15/2024,4/10/2024,,my A-number is {A_NUMBER}\r\n'
    "Jane Roe,jane@example.com,I-765,NSC,2024-01-05,-,2024-04-01,\r\n"
)


def all_kinds() -> dict[str, str]:
    """kind -> text, one input of every kind."""
    return {
        "case_status_api": json.dumps(api_answer()),
        "myuscis": "\n".join(json.dumps(p) for p in myuscis_pair()),
        "simplified": json.dumps(simplified()),
        "typed_form": TYPED,
        "csv_import": CSV,
    }
