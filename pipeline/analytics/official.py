"""Official USCIS processing times, imported to stand beside the community figures.

USCIS publishes, per form, category and office, the time within which 80% of the cases it
completed over the last six months were decided. Two JSON shapes are read: the legacy API
(`data.processing_time` with snake_case keys, 2018-2025) and the 2026 Next.js server action
(`data.data.processingTime`, camelCase, `unitEn`). A file may hold one answer, a list of them,
JSON lines, or answers nested in any wrapper; a folder is read file by file. Units mix months
and weeks and are converted to days.

Offices: legacy codes (WSC, SSC, ESC, MSC, YSC), current ones and field offices all become our
office codes (pipeline.parse.offices). Categories: USCIS's subtype (`136A-E11`, "Based on a
pending asylum application [(c)(8)]") becomes our category code where we have one.

What the two values of `range` mean depends on the era (RANGE_METHODS): from May 2022 the
figure is the time within which 80% of the cases completed in the last six months were
decided (`range[0]`); before, the page showed a range whose lower value was the median (50%)
and whose upper value the time to complete 93% of cases (cycle-time forms: the cycle time and
a multiple of it). An old figure is stored as what it is, never as an 80% one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pipeline.parse.categories import category_of_subtype, has_categories
from pipeline.parse.fields import normalize_form_type, parse_date
from pipeline.parse.offices import office_code
from pipeline.store.db import transaction

DAYS_PER_UNIT: dict[str, float] = {
    "day": 1.0, "week": 7.0, "month": 365.25 / 12, "year": 365.25,
    "dia": 1.0, "semana": 7.0, "mes": 365.25 / 12, "meses": 365.25 / 12, "año": 365.25,
}
_OFFICE_KEYS = ("office_code", "officeCode", "office", "officeId")
# First publication date of the 80% method; figures published before it are a 50%-93% range.
P80_METHOD_SINCE = date(2022, 5, 1)
RANGE_METHODS: dict[str, str] = {
    "p80": "80% of the cases completed in the last six months were decided within this time "
           "(USCIS's method since May 2022)",
    "legacy_50_93": "2018-2022 range: the lower value is the median (50% of cases completed), "
                    "the upper value the time to complete 93% of cases (for cycle-time forms: "
                    "the cycle time and a multiple of it); not an 80% figure",
}
_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "form_type": pl.String, "office": pl.String, "subtype": pl.String,
    "publication_date": pl.Date, "subtype_info": pl.String,
    "official_p80_days": pl.Float64, "official_p80_value": pl.Float64,
    "official_p80_unit": pl.String, "official_other_days": pl.Float64,
    "service_request_date": pl.Date,
    "category": pl.String, "category_matched": pl.Boolean, "office_raw": pl.String,
    "range_method": pl.String, "official_median_days": pl.Float64,
    "official_p93_days": pl.Float64,
}
_VALUE_COLUMNS = [c for c in _SCHEMA if c not in {"form_type", "office", "subtype",
                                                  "publication_date"}]


class OfficialImportError(ValueError):
    """A file that holds no usable USCIS processing times; the message says why."""


@dataclass
class OfficialRead:
    """The official figures read from files, and what was skipped and why."""

    rows: list[dict[str, object]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    n_answers: int = 0

    def frame(self) -> pl.DataFrame:
        """The rows as a frame (last one wins for a repeated form/office/category/date)."""
        frame = pl.DataFrame(self.rows, schema=_SCHEMA)
        keys = ["form_type", "office", "subtype", "publication_date"]
        return frame.unique(keys, keep="last", maintain_order=True)


@dataclass(frozen=True)
class ImportResult:
    """What an import changed."""

    n_answers: int
    n_figures: int
    n_new: int
    n_updated: int
    n_unchanged: int
    skipped: tuple[str, ...]
    methods: tuple[tuple[str, int], ...] = ()  # (range_method, figures) as read
    unmatched_categories: tuple[str, ...] = ()  # USCIS categories we have no code for


def to_days(value: object, unit: object) -> float:
    """Convert a USCIS figure ('7.5', 'Months') to days; ValueError for unknown units."""
    try:
        number = float(str(value).strip())
    except ValueError:
        raise ValueError(f"processing time {value!r} is not a number") from None
    if number < 0 or number != number:
        raise ValueError(f"processing time {value!r} is not a positive number")
    word = str(unit or "").strip().lower()
    key = word[:-1] if word.endswith("s") and word[:-1] in DAYS_PER_UNIT else word
    if key not in DAYS_PER_UNIT:
        raise ValueError(f"unknown time unit {unit!r} (expected Days, Weeks, Months or Years)")
    return number * DAYS_PER_UNIT[key]


def read_official(path: Path) -> OfficialRead:
    """Read every processing-time answer under a file or folder."""
    if not path.exists():
        raise OfficialImportError(f"{path} does not exist")
    files = sorted(p for p in path.rglob("*") if p.suffix in {".json", ".jsonl"}) \
        if path.is_dir() else [path]
    result = OfficialRead()
    for file in files:
        for document in _documents(file):
            for answer, office_hint in _answers(document, None):
                result.n_answers += 1
                _read_answer(answer, office_hint, file.name, result)
    if result.n_answers == 0:
        raise OfficialImportError(
            f"no USCIS processing-time answers in {path}: expected JSON with "
            "data.processing_time (legacy API) or processingTime (2026 site)"
        )
    if not result.rows:
        raise OfficialImportError(
            f"no usable processing times in {path}: " + "; ".join(result.skipped[:5])
        )
    return result


def _documents(file: Path) -> Iterator[Any]:
    text = file.read_text(encoding="utf-8-sig")
    try:
        yield json.loads(text)
        return
    except json.JSONDecodeError as error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) <= 1:
            raise OfficialImportError(f"{file.name} is not valid JSON: {error}") from None
    for number, line in enumerate(lines, 1):
        try:
            yield json.loads(line)
        except json.JSONDecodeError as error:
            raise OfficialImportError(
                f"{file.name} line {number} is not valid JSON: {error}"
            ) from None


def _answers(node: Any, office_hint: str | None) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Yield every processing-time object in a JSON document, with an office from its wrapper."""
    if isinstance(node, list):
        for item in node:
            yield from _answers(item, office_hint)
        return
    if not isinstance(node, dict):
        return
    hint = next((str(node[k]) for k in _OFFICE_KEYS if isinstance(node.get(k), str)), office_hint)
    found = False
    for key in ("processing_time", "processingTime"):
        if isinstance(node.get(key), dict):
            found = True
            yield node[key], hint
    if not found:
        for value in node.values():
            yield from _answers(value, hint)


def _pick(mapping: dict[str, Any], *keys: str) -> Any:
    return next((mapping[k] for k in keys if mapping.get(k) not in (None, "")), None)


def _read_answer(
    answer: dict[str, Any], office_hint: str | None, origin: str, result: OfficialRead
) -> None:
    form_raw = _pick(answer, "form_name", "formName")
    office_raw = _pick(answer, "office_code", "officeCode", "office") or office_hint
    where = f"{origin}: {form_raw or '?'} at {office_raw or '?'}"
    try:
        form = normalize_form_type(form_raw)
    except ValueError as error:
        result.skipped.append(f"{where}: {error}")
        return
    if form is None or not office_raw:
        result.skipped.append(f"{where}: the answer names no form or no office")
        return
    raw_office = str(office_raw).strip().upper()
    office = office_code(raw_office) or raw_office
    subtypes = answer.get("subtypes") or [answer]
    for subtype in subtypes:
        key = str(_pick(subtype, "form_type", "formType", "form_key", "formKey") or "")
        try:
            row = _figure(form, office, key, subtype)
        except ValueError as error:
            result.skipped.append(f"{where} ({key or 'no category'}): {error}")
            continue
        result.rows.append(row | {"office_raw": raw_office} | _category(form, key, row))


def _category(form: str, key: str, row: dict[str, object]) -> dict[str, object]:
    """Our category code for the subtype, and whether the figure's category is known to us.

    A figure for all of a form's categories (no subtype, "All ...", or a form we keep no
    categories for) is matched with category None; a specific category we have no code for
    stays unmatched, so it is never set beside an all-categories community figure.
    """
    info = str(row.get("subtype_info") or "")
    for text in (key, info):
        found = category_of_subtype(form, text)
        if found is not None:
            return {"category": found, "category_matched": True}
    pooled = not key or not has_categories(form) or info.strip().lower().startswith("all ")
    return {"category": None, "category_matched": pooled}


def _figure(form: str, office: str, key: str, subtype: dict[str, Any]) -> dict[str, object]:
    ranges = [r for r in subtype.get("range") or [] if isinstance(r, dict)]
    if not ranges or ranges[0].get("value") in (None, ""):
        raise ValueError("no processing time given")
    published = parse_date(_pick(subtype, "publication_date", "publicationDate"))
    if published is None:
        raise ValueError("no publication date")
    days = [to_days(r.get("value"), _pick(r, "unit", "unitEn", "unit_en"))
            for r in ranges[:2] if r.get("value") not in (None, "")]
    upper = ranges[0]
    unit = _pick(upper, "unit", "unitEn", "unit_en")
    base: dict[str, object] = {
        "form_type": form, "office": office, "subtype": key, "publication_date": published,
        "subtype_info": _pick(subtype, "subtype_info_en", "subtypeInfoEn"),
        "service_request_date": parse_date(
            _pick(subtype, "service_request_date", "serviceRequestDate")
        ),
        "official_other_days": round(days[1], 1) if len(days) > 1 else None,
    }
    if published < P80_METHOD_SINCE:
        return base | {
            "range_method": "legacy_50_93", "official_p80_days": None,
            "official_p80_value": None, "official_p80_unit": None,
            "official_median_days": round(min(days), 1), "official_p93_days": round(max(days), 1),
        }
    return base | {
        "range_method": "p80",
        "official_p80_days": round(days[0], 1),
        "official_p80_value": float(str(upper.get("value"))),
        "official_p80_unit": str(unit),
        "official_median_days": None, "official_p93_days": None,
    }


def import_official(
    con: duckdb.DuckDBPyConnection, read: OfficialRead, imported_at: datetime | None = None
) -> ImportResult:
    """Store the figures in one transaction; importing the same figures again changes nothing."""
    frame = read.frame()
    keys = ["form_type", "office", "subtype", "publication_date"]
    with transaction(con):
        con.register("incoming_official", frame)
        counts = con.execute(
            "SELECT count(*) FILTER (WHERE o.form_type IS NULL),"
            f" count(*) FILTER (WHERE o.form_type IS NOT NULL AND ({_changed()}))"
            " FROM incoming_official i LEFT JOIN official_processing_times o"
            f" USING ({', '.join(keys)})"
        ).fetchall()[0]
        con.execute(
            "INSERT OR REPLACE INTO official_processing_times BY NAME"
            " SELECT i.*, ?::TIMESTAMP AS imported_at FROM incoming_official i"
            f" LEFT JOIN official_processing_times o USING ({', '.join(keys)})"
            f" WHERE o.form_type IS NULL OR {_changed()}",
            [imported_at or datetime.now()],
        )
        con.unregister("incoming_official")
    n_new, n_updated = int(counts[0]), int(counts[1])
    methods = frame.group_by("range_method").len().sort("range_method").rows()
    unmatched = frame.filter(~pl.col("category_matched")).select(
        pl.format("{} {}", "form_type", pl.coalesce("subtype_info", "subtype"))
    ).to_series().unique().sort().to_list()
    return ImportResult(
        n_answers=read.n_answers, n_figures=frame.height, n_new=n_new, n_updated=n_updated,
        n_unchanged=frame.height - n_new - n_updated, skipped=tuple(read.skipped),
        methods=tuple((str(m), int(n)) for m, n in methods),
        unmatched_categories=tuple(str(u) for u in unmatched),
    )


def _changed() -> str:
    return " OR ".join(f"i.{c} IS DISTINCT FROM o.{c}" for c in _VALUE_COLUMNS)

