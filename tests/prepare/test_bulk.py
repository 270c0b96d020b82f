"""The bulk path stores exactly what the per-document path stores, and loses nothing.

Each test ingests the same files twice into real DuckDB files, once through the bulk prepare
step (DuckDB) and once document by document (the parsers), under the same key, and compares
every stored row: cases, events and quarantine (fingerprints, origins, reasons, attempts).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import orjson
import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.prepare.anonymize import PseudonymKey, pseudonymize
from pipeline.prepare.bulk import BulkPreparer
from pipeline.settings import Secret, Settings
from pipeline.sources.bulk import line_batches
from pipeline.sources.files import read_documents
from pipeline.sources.sample import (
    generate_cases,
    to_case_status_api,
    to_myuscis_case_status,
    write_sample,
)
from pipeline.store.load import LoadResult
from tests.conftest import REFERENCE_PAYLOADS

KEY = "0123456789abcdef" * 3


def stored(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            "cases": con.execute(
                "SELECT * EXCLUDE (first_seen, last_seen) FROM cases ORDER BY case_id").fetchall(),
            "events": con.execute(
                "SELECT * EXCLUDE (run_id) FROM status_events ORDER BY ALL").fetchall(),
            "quarantine": con.execute(
                "SELECT fingerprint, origin, case_id, reasons, attempt FROM quarantine ORDER BY ALL"
            ).fetchall(),
        }
    finally:
        con.close()


def ingest_both(tmp_path: Path, inputs: Path, as_of: date | None = None,
                ) -> tuple[dict[str, LoadResult], dict[str, object]]:
    results: dict[str, LoadResult] = {}
    tables: dict[str, object] = {}
    for name, bulk in (("bulk", True), ("documents", False)):
        settings = Settings(home=tmp_path / f"home-{name}", pseudonym_key=Secret(KEY))
        results[name] = ingest_job.ingest_files(
            settings, ingest_job.discover_inputs([inputs]), bulk=bulk, workers=1, as_of=as_of)
        tables[name] = stored(settings.database_path)
    return results, tables


def counts(result: LoadResult) -> tuple[int, int, int, int, int]:
    return (result.n_read, result.n_stored, result.n_rejected, result.n_new_cases, result.n_new_events)


def fixture_documents() -> Iterator[object]:
    """Every payload of the reference fixtures: the file as it is, and each answer inside it."""
    for path in sorted(REFERENCE_PAYLOADS.glob("*.json")):
        payload = json.loads(path.read_text())
        yield payload
        for part in ("body", "valid", "invalid"):
            if part in payload:
                yield payload[part]
        yield from payload.get("variants", [])
        for example in payload.get("examples", []):
            if example.get("body") is not None:
                yield example["body"]


def test_sample_and_fixtures_store_identical_tables(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_sample(inputs, 700, seed=5, as_of=date(2025, 6, 1), per_file=150)
    lines = b"".join(orjson.dumps(d) + b"\n" for d in fixture_documents())
    (inputs / "fixtures.jsonl").write_bytes(lines)
    results, tables = ingest_both(tmp_path, inputs)
    assert tables["bulk"] == tables["documents"]
    assert counts(results["bulk"]) == counts(results["documents"])
    bulk = results["bulk"]
    assert bulk.n_read == 700 + lines.count(b"\n")  # every line accounted for
    assert bulk.n_stored >= 700 and bulk.n_rejected > 0
    reasons = " ".join(r for rejection in bulk.rejections for r in rejection.reasons)
    assert "not a case history" in reasons  # the error answers, in the parsers' own words


def test_as_of_dates_the_bulk_lines_as_it_dates_documents(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_sample(inputs, 120, seed=9, as_of=date(2025, 6, 1))
    _, tables = ingest_both(tmp_path, inputs, as_of=date(2025, 7, 1))
    assert tables["bulk"] == tables["documents"]
    # every stored case was last checked on the --as-of day (a date among its columns)
    checked = {value for row in tables["bulk"]["cases"] for value in row  # type: ignore[union-attr]
               if value == date(2025, 7, 1)}
    assert checked == {date(2025, 7, 1)}


def test_the_sample_is_read_in_bulk_not_per_document(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    write_sample(inputs, 300, seed=8, as_of=date(2025, 6, 1))
    preparer = BulkPreparer(PseudonymKey(KEY.encode()), datetime(2025, 6, 2))
    try:
        prepared = [preparer.prepare(batch) for batch in line_batches(sorted(inputs.glob("*.jsonl")))]
    finally:
        preparer.close()
    assert sum(p.chunk.cases.height for p in prepared) == 300
    assert [p.odd for p in prepared] == [[]]


def _api(receipt: str = "EAC2190000101", **body: object) -> dict[str, object]:
    answer: dict[str, object] = {
        "receiptNumber": receipt, "formType": "I-765",
        "submittedDate": "01-10-2024 10:00:00", "modifiedDate": "03-01-2024 09:00:00",
        "current_case_status_text_en": "Case Was Approved",
        "current_case_status_desc_en": "On March 1, 2024, we approved your Form I-765.",
        "hist_case_status": [{"date": "2024-01-10", "completed_text_en": "We received your Form I-765."}],
    }
    answer.update(body)
    return {"case_status": answer, "message": "Query was successful"}


def _myuscis(receipt: str = "LIN2190000201", **data: object) -> dict[str, object]:
    inner: dict[str, object] = {
        "receiptNumber": receipt, "formType": "I-485", "currentActionCode": "ARV",
        "currentActionCodeDate": "2024-07-09T21:58:24.000Z",
        "statusTitle": "Case Is Being Actively Reviewed By USCIS", "jurisdiction": "NSC",
        "isPremiumProcessed": False,
        "historicalCaseStatuses": [{"date": "05-30-2024 00:00:00", "actionCode": "IAF",
                                    "statusTitle": "Case Was Received"}],
    }
    inner.update(data)
    return {"data": inner}


def odd_lines() -> list[bytes]:
    """Lines that only the per-document path may read, next to ordinary ones."""
    dumps = orjson.dumps
    return [
        dumps(_api()),
        b"",  # blank lines are skipped but counted in line numbers
        b"   \t",
        dumps(_myuscis()),
        dumps(_api("EAC2190000102"))[:-1] + b",}",  # trailing comma: orjson refuses
        dumps(_api("EAC2190000103")).replace(b'"Query was successful"', b"NaN"),
        # numbers beyond a double: orjson refuses them, DuckDB reads them
        dumps(_api("EAC2190000133")).replace(b'"Query was successful"', b"[1, 2e999]"),
        dumps(_api("EAC2190000134")).replace(b'"Query was successful"', b"9" * 310),
        dumps(_api("EAC2190000135", current_case_status_desc_en="Code 1e400, 99" + "9" * 300)),
        b'{"case_status": {"receiptNumber": "EAC2190000104"}, "case_status": {"receiptNumber": "X"}}',
        dumps(_api("EAC2190000105", formType=485)),
        dumps(_api("EAC2190000106", current_case_status_text_en=0)),
        dumps(_api("EAC2190000107", current_case_status_text_en=["Case Was Approved"])),
        dumps(_api("eac2190000108")),  # lower case: the parser upper-cases it
        dumps(_api("EAC-21-900-00109")),
        dumps(_api("EAC2190000110", hist_case_status={"date": "2024-01-10"})),
        dumps(_api("EAC2190000111", hist_case_status="none")),
        dumps(_api("EAC2190000112", hist_case_status=None)),
        dumps(_api("EAC2190000113", hist_case_status=False)),
        dumps(_api("EAC2190000114", hist_case_status=[{"completed_text_en": "On May 5, 2024, we received it."}])),
        dumps(_api("EAC2190000115", hist_case_status=[5])),
        dumps(_api("EAC2190000116", current_case_status_desc_en="On&nbsp;March 2, 2024, it moved. On April 4, 2024, more.")),
        dumps(_api("EAC2190000117", current_case_status_desc_en="<b>On</b> March 3, 2024, done; on April 4, 2024, more.")),
        dumps(_api("EAC2190000118", current_case_status_desc_en="Done on February 30, 2024.")),
        dumps(_api("EAC2190000119", submittedDate="January 10, 2024")),
        dumps(_api("EAC2190000120", submittedDate="13-45-2024 10:00:00")),
        dumps(_api("EAC2190000121", modifiedDate="01-01-2099 10:00:00",
                   current_case_status_desc_en="")),  # in the future: pandera refuses it
        dumps(_api("EAC2190000122", submittedDate=None, hist_case_status=None,
                   current_case_status_desc_en="", modifiedDate=None)),
        dumps(_api("EAC2190000123", _synthetic="yes")),
        dumps({**_api("EAC2190000124"), "_synthetic": True}),
        dumps({"case_status": _api("EAC2190000125")["case_status"]}),  # no message: fine
        dumps({"case_status": {**_api("EAC2190000126")["case_status"], "statusTitle": None}}),
        dumps({**_api("EAC2190000127"), "fault": {"faultstring": "Invalid access token"}}),
        dumps({"errors": [{"code": "E", "message": "receipt number not found"}]}),
        dumps({"data": None}),
        dumps({**_myuscis("LIN2190000202"), "extra": 1}),
        dumps({**_myuscis("LIN2190000203"), "error": "signed out"}),
        dumps(_myuscis("LIN2190000204", historicalCaseStatuses=None)),
        dumps(_myuscis("LIN2190000205", jurisdiction="TEXAS SERVICE CENTER", isPremiumProcessed="yes")),
        dumps(_myuscis("LIN2190000206", currentActionCodeDate="2024-07-09T21:58:24+02:00")),
        dumps(_myuscis("LIN2190000207", statusTitle="We sent you a request for evidence")),
        dumps(_myuscis("XYZ2190000208")),
        dumps(_myuscis("LIN2190000209", formType="I-458X")),
        dumps(_myuscis("LIN2190000210", formType="Form I485")),
        dumps(_myuscis("LIN2190000211", historicalCaseStatuses=[])),
        dumps([_api("EAC2190000128"), _myuscis("LIN2190000212")]),  # a list on one line
        dumps(_api("EAC2190000129")),  # the same receipt twice: merged as the parsers merge
        dumps(_api("EAC2190000129", formType="I-130")),
        dumps(_myuscis("LIN2190000213")),
        dumps(_myuscis("LIN2190000213", jurisdiction="TSC")),
        "\ufeff".encode() + dumps(_api("EAC2190000130")),  # byte order mark
        dumps(_api("EAC2190000131")).replace(b"I-765.", b"I-765 \xff."),  # not UTF-8
        dumps(_api("EAC2190000132", current_case_status_desc_en="On July 4, 2024" + " x" * 600_000)),
        b'{"case_status": ',
        dumps(_api("IOE0900000133", submittedDate=None, modifiedDate=None)),
        dumps(_api("SRC9990000134")),
        dumps(_api("WAC2490000135", current_case_status_text_en="Case Was Transferred",
                   modifiedDate="2024-08-01")),
        # refused by the checks of each event against its case: before the receipt, a response
        # before the request for evidence, a card mailed before it was produced
        dumps(_api("EAC2190000136", submittedDate="03-10-2024 10:00:00")),
        dumps(_myuscis("LIN2190000214", historicalCaseStatuses=[
            {"date": "06-01-2024 00:00:00", "statusTitle": "Request for Additional Evidence Was Sent"},
            {"date": "05-01-2024 00:00:00", "statusTitle": "Response To USCIS' Request For Evidence Was Received"},
            {"date": "04-01-2024 00:00:00", "statusTitle": "Case Was Received"}])),
        dumps(_myuscis("LIN2190000215", historicalCaseStatuses=[
            {"date": "04-01-2024 00:00:00", "statusTitle": "Case Was Received"},
            {"date": "06-01-2024 00:00:00", "statusTitle": "Card Was Produced"},
            {"date": "05-01-2024 00:00:00", "statusTitle": "Card Was Mailed To Me"}])),
    ]


def test_odd_lines_are_read_per_document_with_the_same_result(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    lines = odd_lines()
    (inputs / "odd.jsonl").write_bytes(b"\n".join(lines))  # the last line has no newline
    (inputs / "odd-crlf.ndjson").write_bytes(b"\r\n".join(lines[:5]) + b"\r\n")
    results, tables = ingest_both(tmp_path, inputs)
    assert tables["bulk"] == tables["documents"]
    assert counts(results["bulk"]) == counts(results["documents"])
    non_blank = sum(1 for line in lines if line.strip()) + sum(1 for line in lines[:5] if line.strip())
    assert results["bulk"].n_read == non_blank
    origins = {r.origin for r in results["bulk"].rejections}
    # odd.jsonl is the second file (after odd-crlf.ndjson); blank lines count, as per document
    assert "file 2 line 5" in origins
    reasons = {reason for r in results["bulk"].rejections for reason in r.reasons}
    assert {"a status is dated before USCIS received the case (e.g. a decision before receipt)",
            "the evidence response is dated before the request for evidence",
            "the card is mailed before it was produced"} <= reasons


def test_bulk_keeps_what_the_parsers_keep_for_ordinary_lines(tmp_path: Path) -> None:
    """The odd lines above are mostly handed over; these ordinary ones must not be."""
    preparer = BulkPreparer(PseudonymKey(KEY.encode()), datetime(2025, 6, 2))
    inputs = tmp_path / "in.jsonl"
    ordinary = [_api(), _myuscis(), {"case_status": _api("EAC2190000125")["case_status"]},
                _api("EAC2190000121", modifiedDate="01-01-2099 10:00:00", current_case_status_desc_en=""),
                _myuscis("LIN2190000205", jurisdiction="TEXAS SERVICE CENTER", isPremiumProcessed="yes"),
                _api("EAC2190000112", hist_case_status=None), _myuscis("LIN2190000211", historicalCaseStatuses=[])]
    inputs.write_bytes(b"".join(orjson.dumps(d) + b"\n" for d in ordinary))
    try:
        [prepared] = [preparer.prepare(batch) for batch in line_batches([inputs])]
    finally:
        preparer.close()
    assert prepared.odd == []
    assert prepared.chunk.cases.height + len(prepared.chunk.rejections) == len(ordinary)
    assert "in the future" in " ".join(prepared.chunk.rejections[0].reasons)


@pytest.mark.parametrize("key", ["k" * 32, "0123456789abcdef" * 4, "x" * 100])
def test_pseudonyms_in_sql_are_the_hmac_of_pseudonymize(tmp_path: Path, key: str) -> None:
    rng = random.Random(3)
    cases = list(generate_cases(200, seed=rng.randrange(1000), as_of=date(2025, 6, 1)))
    path = tmp_path / "cases.jsonl"
    path.write_bytes(b"".join(
        orjson.dumps(to_case_status_api(c) if i % 2 else to_myuscis_case_status(c)) + b"\n"
        for i, c in enumerate(cases)))
    preparer = BulkPreparer(PseudonymKey(key.encode()), datetime(2025, 6, 2))
    try:
        [prepared] = [preparer.prepare(batch) for batch in line_batches([path])]
    finally:
        preparer.close()
    expected = {pseudonymize(c.receipt, PseudonymKey(key.encode())) for c in cases}
    assert set(prepared.chunk.cases["case_id"]) == expected


@pytest.mark.parametrize("block_bytes", [7, 30, 2**20])
def test_lines_are_numbered_like_the_per_document_reader(tmp_path: Path, block_bytes: int) -> None:
    path = tmp_path / "f.jsonl"
    rows = [b'{"a": %d}' % i for i in range(40)]
    rows[3] = b""
    rows[7] = b"  \t "
    rows[12] = b'{"long": "' + b"x" * 100 + b'"}'  # longer than a block: read on until it ends
    rows[13] = b'{"bad": "\xff"}'  # not UTF-8: handed to the per-document path
    path.write_bytes(b"\r\n".join(rows))  # and the last line has no newline
    expected = [(d.origin, d.content) for d in read_documents([path])]
    got: list[tuple[str, bytes]] = []
    for batch in line_batches([path], batch_bytes=50, block_bytes=block_bytes):
        table = batch.lines
        got.extend((f"{batch.files[f].name} line {n}", t.encode()) for f, n, t in zip(
            table["file"].to_pylist(), table["line"].to_pylist(), table["text"].to_pylist(), strict=True))
        got.extend((d.origin, d.content) for d in batch.odd)
    assert sorted(got) == sorted(expected)


def array_items() -> list[bytes]:
    """Sample answers in both formats, then every odd line that is valid JSON on its own."""
    cases = generate_cases(2_000, seed=23, as_of=date(2025, 6, 1))
    items = [orjson.dumps(to_case_status_api(c) if i % 2 else to_myuscis_case_status(c))
             for i, c in enumerate(cases)]
    for line in odd_lines():
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        items.append(line.strip())
    return items


def ingest_bulk(tmp_path: Path, name: str, inputs: Path) -> tuple[LoadResult, dict[str, list[tuple[object, ...]]]]:
    settings = Settings(home=tmp_path / f"home-{name}", pseudonym_key=Secret(KEY))
    result = ingest_job.ingest_files(settings, ingest_job.discover_inputs([inputs]), workers=1)
    return result, stored(settings.database_path)


def test_a_large_json_array_of_answers_is_read_item_by_item_like_lines(tmp_path: Path) -> None:
    items = array_items()
    as_array, as_lines = tmp_path / "array", tmp_path / "lines"
    as_array.mkdir()
    as_lines.mkdir()
    (as_array / "export.json").write_bytes(b"[\n  " + b",\n  ".join(items) + b"\n]\n")
    (as_lines / "export.jsonl").write_bytes(b"\n".join(items) + b"\n")
    assert (as_array / "export.json").stat().st_size > 1_000_000  # too large to be one document
    from_array, array_tables = ingest_bulk(tmp_path, "array", as_array)
    from_lines, lines_tables = ingest_bulk(tmp_path, "lines", as_lines)
    assert counts(from_array) == counts(from_lines)
    assert from_array.n_read == len(items) and from_array.n_stored >= 2_000
    assert array_tables["cases"] == lines_tables["cases"]
    assert array_tables["events"] == lines_tables["events"]

    def why(tables: dict[str, list[tuple[object, ...]]]) -> list[tuple[object, ...]]:
        return sorted(((case_id, reasons) for _, _, case_id, reasons, _ in tables["quarantine"]), key=str)

    assert why(array_tables) == why(lines_tables) != []
    origins = {r.origin for r in from_array.rejections}
    assert origins and all(o.startswith("file 1 item ") for o in origins)


def test_an_array_that_breaks_is_refused_with_where_it_breaks(tmp_path: Path) -> None:
    items = array_items()[:2_000]
    text = b"[\n" + b",\n".join(items) + b"\n]\n"
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "cut-by-jane-doe.json").write_bytes(text[: len(text) * 9 // 10])  # the end is missing
    result, tables = ingest_bulk(tmp_path, "cut", inputs)
    assert (result.n_read, result.n_stored, len(tables["cases"])) == (1, 0, 0)
    [broken] = result.rejections
    reason = " ".join(broken.reasons)
    assert broken.origin == "file 1"
    assert re.search(r"not a valid JSON array: item \d+ is broken at its byte \d+ \(unexpected end", reason)
    assert "nothing of the file was stored" in reason and "ingest it again" in reason
    assert "jane" not in str(tables["quarantine"]).lower()  # never the file's name
