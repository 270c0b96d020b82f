"""Answers that are not a case history but an error or an empty page, each explained.

A person who pastes the wrong thing should learn what they pasted and what to copy
instead; the texts quoted from an error answer are redacted, since they may name the case.
"""

from __future__ import annotations

from pipeline.parse.redact import redact

_WRAPPER_KEYS = {"data", "message", "error", "errors", "status", "success", "code", "timestamp",
                 "_synthetic", "_note"}


def _quote(value: object) -> str:
    text = redact(" ".join(str(value).split())).replace("'", "’")
    return "'" + (text if len(text) <= 120 else text[:117] + "...") + "'"


def _first_message(errors: object) -> str | None:
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, dict):
            return str(first.get("message") or first.get("code") or first)
        return str(first)
    if isinstance(errors, dict):
        return str(errors.get("message") or errors.get("description") or errors)
    if errors:
        return str(errors)
    return None


def explain_error_answer(payload: object) -> str | None:
    """Say what is wrong when a payload is an error or an empty answer; None for a case."""
    if not isinstance(payload, dict):
        return None
    keys = set(payload)
    if isinstance(payload.get("fault"), dict):
        fault = payload["fault"]
        return (
            f"this is an error from the USCIS API gateway ({_quote(fault.get('faultstring'))}), "
            "not a case history: fetch the case again with a valid token and paste the answer"
        )
    if "case_status" not in keys and "errors" in keys and "data" not in keys:
        return (
            f"this is an error answer from the USCIS Case Status API "
            f"({_quote(_first_message(payload['errors']))}), not a case history. A 404 also "
            "means USCIS will not show this case; check the receipt number"
        )
    if "data" in keys and keys <= _WRAPPER_KEYS:
        problem = payload.get("error") or payload.get("errors")
        if problem:
            return (
                f"myUSCIS answered with an error ({_quote(_first_message(problem))}) instead of "
                "your case: you were probably signed out. Sign in to my.uscis.gov, open the "
                "address again and copy the new answer"
            )
        if payload["data"] is None:
            return (
                'this myUSCIS answer is empty ({"data": null}): either you were not signed in, or '
                "(common for receipt_info) USCIS has nothing there for this case. Sign in to "
                "my.uscis.gov and paste the case_status/<receipt> answer"
            )
    if "error" in keys and keys <= _WRAPPER_KEYS - {"data"}:
        return (
            f"myUSCIS answered with an error ({_quote(_first_message(payload['error']))}) instead "
            "of your case: you were probably signed out. Sign in to my.uscis.gov and copy the "
            "answer again"
        )
    response = payload.get("CaseStatusResponse")
    if isinstance(response, dict) and response.get("isValid") is False:
        return (
            "USCIS's case status page answered that this receipt number is not valid: "
            "check the number on your receipt notice (Form I-797C)"
        )
    return None
