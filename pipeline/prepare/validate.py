"""pandera schemas for cases and events, validated lazily: valid rows load, invalid ones
go to quarantine with every failure's reason in words a user understands."""

from __future__ import annotations

import importlib.abc
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import TYPE_CHECKING

import numpy  # noqa: F401  (imported before pandera, so it finds what it needs)
import polars as pl
import pyarrow  # noqa: F401

from pipeline.model import FORM_TYPE_PATTERN, PROCESSING_TYPES, CaseRecord
from pipeline.receipts import OFFICES
from pipeline.stages import STAGES

# What pandera loads when it is installed but its polars API never uses: its pandas layer,
# and hypothesis, for its data-synthesis strategies (a test dependency of ours).
_HIDDEN = ("pandas", "hypothesis")


class _Hidden(importlib.abc.MetaPathFinder):
    """Hides the layers from the thread that made it only: another thread may import them."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name.split(".", 1)[0] in _HIDDEN and threading.get_ident() == self.thread:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return None


@contextmanager
def _without_unused_layers() -> Iterator[None]:
    """Import pandera's polars API without pandas or hypothesis, unless they are loaded already.

    pandera's polars API uses neither, but the pandera package loads its pandas API when
    pandas is installed (Streamlit brings it), 0.9 s of every `timelines ingest` and poll, and
    hypothesis when that is installed (0.3 s more). pandera supports installs without them, and
    takes that path when they cannot be found. Other modules import them as usual afterwards;
    where they are loaded first (the dashboard, the tests), pandera loads whole.
    `tests/prepare/test_validate.py` checks both judge alike."""
    blocker = _Hidden()
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)


if TYPE_CHECKING:
    import pandera.polars as pa
    from pandera.errors import SchemaErrors

_pandera_loaded = threading.Event()
_pandera_lock = threading.Lock()


def _load_pandera() -> None:
    """pandera's polars API, loaded once, at the first validation (or by `load_pandera_soon`)
    rather than at import: about 0.3 s that a command which never validates does not pay."""
    if not _pandera_loaded.is_set():
        with _pandera_lock:
            if not _pandera_loaded.is_set():
                with _without_unused_layers():
                    import pandera.polars as pandera_polars

                    # pandera looks for its pandas layer once more at the first check it
                    # runs: run one here
                    pandera_polars.DataFrameSchema(
                        {"x": pandera_polars.Column(pl.Int8, pandera_polars.Check.ge(0))}
                    ).validate(pl.DataFrame({"x": [1]}, schema={"x": pl.Int8}))
                _pandera_loaded.set()


def load_pandera_soon() -> None:
    """Start loading pandera in a thread of its own, for a caller that will validate soon:
    the import (about 0.3 s of Python) then overlaps with work that lets go of the
    interpreter lock (DuckDB reading the first batch) instead of following it."""
    if not _pandera_loaded.is_set():
        threading.Thread(target=_load_pandera, name="load-pandera", daemon=True).start()


EARLIEST = date(1990, 1, 1)
# Canonical category codes (pipeline.parse.categories): letters, digits, ( ) and '-'.
CATEGORY_PATTERN = r"^[A-Za-z0-9()\-]{1,16}$"

CASE_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "case_id": pl.Utf8,
    "source": pl.Utf8,
    "form_type": pl.Utf8,
    "intake_office": pl.Utf8,
    "current_office": pl.Utf8,
    "fiscal_year": pl.Int32,
    "received_date": pl.Date,
    "premium": pl.Boolean,
    "observed_at": pl.Datetime("us"),
    "last_modified": pl.Datetime("us"),
    "synthetic": pl.Boolean,
    "category": pl.Utf8,
    "processing": pl.Utf8,
    "tracked_since": pl.Date,
    "last_checked": pl.Date,
    "received_estimated": pl.Boolean,
}
EVENT_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "case_id": pl.Utf8,
    "event_date": pl.Date,
    "stage": pl.Utf8,
    "title": pl.Utf8,
    "source": pl.Utf8,
}

_MISSING = {
    "form_type": "the form type is missing (e.g. I-485)",
    "intake_office": "the office could not be told from the receipt number",
    "received_date": "the date USCIS received the case is missing",
    "event_date": "a status has no date",
    "stage": "a status has no stage",
}


@lru_cache(maxsize=8)
def case_schema(today: date) -> pa.DataFrameSchema:
    """Schema of the cases table for records seen up to `today`."""
    _load_pandera()
    import pandera.polars as pa

    return pa.DataFrameSchema(
        {
            "case_id": pa.Column(pl.Utf8, pa.Check.str_matches(r"^c_[0-9a-f]{32}$", error="internal: bad pseudonym")),
            "source": pa.Column(pl.Utf8),
            "form_type": pa.Column(
                pl.Utf8,
                pa.Check.str_matches(FORM_TYPE_PATTERN, error="the form type is not a USCIS form number"),
            ),
            "intake_office": pa.Column(
                pl.Utf8, pa.Check.isin(list(OFFICES), error="the intake office is not a known USCIS office")
            ),
            "current_office": pa.Column(
                pl.Utf8,
                pa.Check.isin(list(OFFICES), error="the current office is not a known USCIS office"),
                nullable=True,
            ),
            "fiscal_year": pa.Column(pl.Int32, nullable=True),
            "received_date": pa.Column(
                pl.Date,
                [
                    pa.Check.ge(EARLIEST, error="the receipt date is before 1990"),
                    pa.Check.le(today, error="the receipt date is in the future"),
                ],
            ),
            "premium": pa.Column(pl.Boolean, nullable=True),
            "observed_at": pa.Column(pl.Datetime("us")),
            "last_modified": pa.Column(pl.Datetime("us"), nullable=True),
            "synthetic": pa.Column(pl.Boolean),
            "category": pa.Column(
                pl.Utf8,
                pa.Check.str_matches(CATEGORY_PATTERN, error="the category is not a category code we know"),
                nullable=True,
            ),
            "processing": pa.Column(
                pl.Utf8, pa.Check.isin(list(PROCESSING_TYPES), error="internal: bad processing type")
            ),
            "tracked_since": pa.Column(
                pl.Date,
                [
                    pa.Check.ge(EARLIEST, error="the tracked-since date is before 1990"),
                    pa.Check.le(today, error="the tracked-since date is in the future"),
                ],
                nullable=True,
            ),
            "last_checked": pa.Column(
                pl.Date,
                [
                    pa.Check.ge(EARLIEST, error="the last-checked date is before 1990"),
                    pa.Check.le(today, error="the last-checked date is in the future"),
                ],
            ),
            "received_estimated": pa.Column(pl.Boolean),
        },
        checks=[
            pa.Check(
                lambda d: d.lazyframe.select(
                    (pl.col("tracked_since") >= pl.col("received_date")).fill_null(True)
                ),
                name="tracked_before_receipt",
                error="the tracked-since date is before USCIS received the case",
            ),
            pa.Check(
                lambda d: d.lazyframe.select(
                    (pl.col("last_checked") >= pl.col("received_date")).fill_null(True)
                ),
                name="checked_before_receipt",
                error="the last-checked date is before USCIS received the case",
            ),
            pa.Check(
                lambda d: d.lazyframe.select(
                    (pl.col("tracked_since") <= pl.col("last_checked")).fill_null(True)
                ),
                name="tracked_after_checked",
                error="the tracked-since date is after the last-checked date",
            ),
        ],
        strict=True,
    )


@lru_cache(maxsize=8)
def event_schema(today: date) -> pa.DataFrameSchema:
    """Schema of status events joined with their case's receipt date."""
    _load_pandera()
    import pandera.polars as pa

    return pa.DataFrameSchema(
        {
            "case_id": pa.Column(pl.Utf8),
            "event_date": pa.Column(
                pl.Date,
                [
                    pa.Check.ge(EARLIEST, error="a status date is before 1990"),
                    pa.Check.le(today, error="a status date is in the future"),
                ],
            ),
            "stage": pa.Column(pl.Utf8, pa.Check.isin(list(STAGES), error="a status has an unknown stage")),
            "title": pa.Column(pl.Utf8),
            "source": pa.Column(pl.Utf8),
            "received_date": pa.Column(pl.Date, nullable=True),
            "first_rfe": pa.Column(pl.Date, nullable=True),
            "first_card": pa.Column(pl.Date, nullable=True),
        },
        checks=[
            pa.Check(
                lambda d: d.lazyframe.select(
                    pl.col("received_date").is_null() | (pl.col("event_date") >= pl.col("received_date"))
                ),
                name="before_receipt",
                error="a status is dated before USCIS received the case (e.g. a decision before receipt)",
            ),
            pa.Check(
                lambda d: d.lazyframe.select(
                    (pl.col("stage") != "rfe_response")
                    | pl.col("first_rfe").is_null()
                    | (pl.col("event_date") >= pl.col("first_rfe"))
                ),
                name="response_before_rfe",
                error="the evidence response is dated before the request for evidence",
            ),
            pa.Check(
                lambda d: d.lazyframe.select(
                    (pl.col("stage") != "card_mailed")
                    | pl.col("first_card").is_null()
                    | (pl.col("event_date") >= pl.col("first_card"))
                ),
                name="mailed_before_produced",
                error="the card is mailed before it was produced",
            ),
        ],
    )


def to_frames(records: list[CaseRecord]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Turn anonymized records into a cases frame and an events frame."""
    cases = pl.DataFrame(
        {
            "case_id": [r.case_id for r in records],
            "source": [r.source for r in records],
            "form_type": [r.form_type for r in records],
            "intake_office": [r.intake_office for r in records],
            "current_office": [r.current_office for r in records],
            "fiscal_year": [r.fiscal_year for r in records],
            "received_date": [r.received_date for r in records],
            "premium": [r.premium for r in records],
            "observed_at": [r.observed_at for r in records],
            "last_modified": [r.last_modified for r in records],
            "synthetic": [r.synthetic for r in records],
            "category": [r.category for r in records],
            "processing": [r.processing for r in records],
            "tracked_since": [r.tracked_since for r in records],
            "last_checked": [r.checked_on for r in records],
            "received_estimated": [r.received_estimated for r in records],
        },
        schema=CASE_COLUMNS,
    )
    events = pl.DataFrame(
        {
            "case_id": [r.case_id for r in records for _ in r.events],
            "event_date": [e.event_date for r in records for e in r.events],
            "stage": [e.stage for r in records for e in r.events],
            "title": [e.title for r in records for e in r.events],
            "source": [r.source for r in records for _ in r.events],
        },
        schema=EVENT_COLUMNS,
    )
    return cases, events


@dataclass(frozen=True)
class ValidatedBatch:
    """Rows that passed, and for each failed case every reason it failed."""

    cases: pl.DataFrame
    events: pl.DataFrame
    reasons: dict[str, list[str]]


def _reasons_by_index(error: SchemaErrors, frame: pl.DataFrame) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for row in error.failure_cases.iter_rows(named=True):
        index = row["index"]
        # a schema-wide failure (wrong dtype) has no index: every row fails with it
        indices = list(range(frame.height)) if index is None else [int(index)]
        check = str(row["check"])
        column = row["column"]
        if check == "not_nullable":
            message = _MISSING.get(str(column), f"{column} is missing")
        elif check.startswith(("dtype(", "column_in_")):
            message = f"internal: column {column} has the wrong type ({check})"
        elif row["schema_context"] == "Column" and row["failure_case"] is not None:
            message = f"{check} (got {row['failure_case']})"
        else:
            message = check
        for i in indices:
            bucket = found.setdefault(i, [])
            if message not in bucket:
                bucket.append(message)
    return found


# The dates each event is checked against, besides its case's receipt: the first of these stages.
FIRST_OF = {"first_rfe": "rfe", "first_card": "card_production"}
ANCHOR_COLUMNS = ("received_date", *FIRST_OF)


def validate_frames(cases: pl.DataFrame, events: pl.DataFrame, today: date | None = None, *,
                    anchored: bool = False) -> ValidatedBatch:
    """Validate lazily; a case fails as a whole when it or any of its events fails.

    With `anchored`, each event already carries ANCHOR_COLUMNS (the bulk path makes them in
    SQL); the events returned have EVENT_COLUMNS only."""
    today = today or (datetime.now() + timedelta(days=1)).date()
    _load_pandera()
    from pandera.errors import SchemaErrors

    reasons: dict[str, list[str]] = {}
    case_ids = cases["case_id"]
    try:
        case_schema(today).validate(cases, lazy=True)
    except SchemaErrors as err:
        for i, messages in _reasons_by_index(err, cases).items():
            reasons.setdefault(case_ids[i], []).extend(messages)

    if anchored:
        checked = events.select(*EVENT_COLUMNS, *ANCHOR_COLUMNS)
        events = events.select(*EVENT_COLUMNS)
    else:  # the dates each case's events are checked against, on each event
        anchors = events.group_by("case_id").agg(
            pl.col("event_date").filter(pl.col("stage") == stage).min().alias(name)
            for name, stage in FIRST_OF.items()
        ).join(cases.select("case_id", "received_date"), on="case_id", how="left")
        checked = events.join(anchors, on="case_id", how="left").select(*EVENT_COLUMNS, *ANCHOR_COLUMNS)
    try:
        event_schema(today).validate(checked, lazy=True)
    except SchemaErrors as err:
        event_ids = checked["case_id"]
        for i, messages in _reasons_by_index(err, checked).items():
            bucket = reasons.setdefault(event_ids[i], [])
            bucket.extend(m for m in messages if m not in bucket)

    no_events = cases.join(events.select("case_id"), on="case_id", how="anti")
    for case_id in no_events["case_id"]:
        reasons.setdefault(case_id, []).append("the history has no dated status at all")
    if not reasons:
        return ValidatedBatch(cases, events, reasons)

    bad = pl.DataFrame({"case_id": list(reasons)}, schema={"case_id": pl.Utf8})
    return ValidatedBatch(
        cases=cases.join(bad, on="case_id", how="anti"),
        events=events.join(bad, on="case_id", how="anti"),
        reasons=reasons,
    )
