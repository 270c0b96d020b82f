"""Attacks through what a submission claims about someone else's receipt.

- A typed timeline naming a polled receipt turned that pending, polled case into "denied after
  12 days". Expected: self-reported data never changes verified data; the claim is kept apart.
- Submitting a typed timeline for someone's receipt answered "this case is already stored as
  I-485": a status was an oracle. Expected: the status a submitter sees is the same whether the
  receipt was known, polled, stored with another form, or never seen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.prepare.anonymize import load_key, pseudonymize
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from tests.conftest import StartEmulator
from tests.security.attack_data import cli_json
from tests.support.cli import timelines

POLLED = "EAC9999103402"   # a pending sandbox case: received, then biometrics
UNKNOWN = "EAC9999000017"  # well formed, never polled nor submitted


def _api(server: Any) -> dict[str, str]:
    return {"USCIS_API_BASE_URL": server.base_url, "USCIS_CLIENT_ID": "id",
            "USCIS_CLIENT_SECRET": "secret", "USCIS_API_RATE_PER_SECOND": "50"}


def _poll(home: Path, server: Any) -> None:
    added = timelines("track", "add", POLLED, "--consent", home=home, **_api(server))
    assert added.returncode == 0, added.stderr
    polled = timelines("poll", home=home, **_api(server))
    assert polled.returncode == 0, polled.stdout + polled.stderr


def _rows(settings: Settings, sql: str, params: list[object]) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def _claim(home: Path, tmp_path: Path, receipt: str, form: str, name: str) -> dict[str, Any]:
    claim = tmp_path / name
    claim.write_text(f"form: {form}\nreceipt: {receipt}\nreceived: 2023-12-28\n"
                     f"denied: 2024-01-09\n")
    answer = cli_json(home, "submit", str(claim), "--consent")
    status = timelines("submission-status", answer["deletion_code"], "--format", "json", home=home)
    return json.loads(status.stdout) | {"said": answer}


def _neutral(status: dict[str, Any]) -> dict[str, Any]:
    """A status without what differs between any two submissions (ids, times)."""
    return {k: v for k, v in status.items()
            if k not in {"submission_id", "submitted_at", "updated_at", "said"}}


def test_a_claim_never_changes_a_polled_case(
    settings: Settings, tmp_path: Path, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000)
    _poll(settings.home, server)
    case_id = pseudonymize(POLLED, load_key(settings.key_path))
    before = _rows(settings, "SELECT event_date, stage FROM status_events WHERE case_id = ?"
                             " ORDER BY ALL", [case_id])
    [(form, provenance)] = _rows(settings, "SELECT form_type, provenance FROM cases"
                                           " WHERE case_id = ?", [case_id])
    assert provenance == "verified" and ("denied",) not in {(s,) for _, s in before}
    _claim(settings.home, tmp_path, POLLED, form, "same-form.txt")
    _claim(settings.home, tmp_path, POLLED, "I-765" if form != "I-765" else "I-485", "other.txt")
    after = _rows(settings, "SELECT event_date, stage FROM status_events WHERE case_id = ?"
                            " ORDER BY ALL", [case_id])
    assert after == before
    assert _rows(settings, "SELECT form_type, provenance FROM cases WHERE case_id = ?",
                 [case_id]) == [(form, "verified")]
    kept = _rows(settings, "SELECT reason FROM claims_apart WHERE case_id = ?", [case_id])
    assert sorted(r[0] for r in kept) == ["verified_case", "verified_case"]
    verified = cli_json(settings.home, "stats", "--verified-only", "--by", "form")
    everyone = cli_json(settings.home, "stats", "--by", "form")
    assert all(r["n_verified"] in (None, r["n_cases"]) for r in verified)
    assert len(everyone) >= len(verified)


def test_the_status_of_a_claim_tells_nothing_about_the_receipt(
    settings: Settings, tmp_path: Path, start_emulator: StartEmulator
) -> None:
    server = start_emulator(requests_per_second=1000)
    _poll(settings.home, server)
    [(form,)] = _rows(settings, "SELECT form_type FROM cases", [])
    other = "I-765" if form != "I-765" else "I-485"
    on_polled = _claim(settings.home, tmp_path, POLLED, other, "a.txt")
    on_unknown = _claim(settings.home, tmp_path, UNKNOWN, other, "b.txt")
    assert _neutral(on_polled) == _neutral(on_unknown)
    assert on_polled["state"] == "received"
    for status in (on_polled, on_unknown):
        text = json.dumps(_neutral(status))
        assert "already" not in text and "stored as" not in text and form not in text
    # nor do the published run rows: an inbox run records no count of new cases
    runs = current_snapshot(settings.published_dir).table("runs").filter(pl.col("flow") == "inbox")
    assert runs.height == 2 and runs["n_new_cases"].to_list() == [0, 0]
    assert runs["n_stored"].to_list() == [1, 1]
