"""A community spreadsheet of timelines (one row per case) exported as CSV or TSV.

The columns are the typed-form fields (see docs/templates/community-timelines-template.csv
and docs/ingest.md); common header spellings are understood ("Receipt Date", "Bio",
"Approval", "Category", "Processing"), and an operator can map others with
`--columns SOURCE=OURS`. The usual spreadsheet mess is tolerated: a byte-order mark, ',' ';'
or tab separators, CRLF or CR line endings, stray whitespace and punctuation, m/d/yy dates,
blank rows, and '.', '-', 'n/a' or 'pending' for a missing date. Columns we do not know
(names, notes, usernames) are never read. `iter_rows` streams: one row at a time.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import chain

from pipeline.parse.columns import column_field, field_name
from pipeline.parse.errors import ParseError
from pipeline.parse.typed_form import TimelineRows, TypedTimeline, read_timeline

SOURCE = "csv_import"
_DELIMITERS = (",", ";", "\t")
csv.field_size_limit(1_000_000)  # one cell is never this big; a larger one is an error


def normalize_lines(text: str) -> str:
    """Drop a byte-order mark and turn CRLF / CR line endings into LF."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def sniff_delimiter(header_line: str) -> str:
    """The separator the header row uses: ',', ';' or tab (the most frequent)."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def looks_like_csv(text: str) -> bool:
    """Tell whether a text starts with a header row naming a form type and a date column."""
    for line in normalize_lines(text).split("\n"):
        if line.strip():
            delimiter = sniff_delimiter(line)
            names = {field_name(h) for h in next(csv.reader([line], delimiter=delimiter))}
            return not _missing_columns(names)
    return False


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row under the header: the timeline read from it, or what is wrong with it (both
    None for a blank row)."""

    number: int
    timeline: TypedTimeline | None
    error: str | None
    text: str


@dataclass
class TableHeader:
    """The columns of a table as read: the field of each column and the columns not read."""

    fields: list[str | None]
    ignored: list[str]
    row: int


def iter_rows(
    lines: Iterable[str],
    overrides: dict[str, str | None] | None = None,
    header_out: list[TableHeader] | None = None,
) -> Iterator[TableRow]:
    """Stream the data rows of a table given as lines (any line endings); ParseError if the
    header is missing or names no form type / received date column."""
    stream = iter(lines)
    first = ""
    for line in stream:
        if line.strip().lstrip("\ufeff").strip():
            first = line.lstrip("\ufeff")
            break
    if not first:
        raise ParseError("the file is empty: it needs a header row and one row per case")
    reader = csv.reader(chain([first], stream), delimiter=sniff_delimiter(first))
    header: TableHeader | None = None
    number = 0
    for cells in reader:
        number += 1
        if not any(c.strip() for c in cells):
            if header is not None:
                yield TableRow(number, None, None, "")  # a blank row: no case in it
            continue
        if header is None:
            header = read_header(cells, number, overrides)
            if header_out is not None:
                header_out.append(header)
            continue
        values: dict[str, object] = {}
        for name, cell in zip(header.fields, cells, strict=False):
            if name is not None and (name not in values or not str(values[name]).strip()):
                values[name] = cell
        text = "\x1f".join(cells)
        try:
            yield TableRow(number, read_timeline(values, f"row {number}", SOURCE), None, text)
        except ParseError as error:
            yield TableRow(number, None, str(error), text)


def read_header(
    cells: list[str], number: int, overrides: dict[str, str | None] | None = None
) -> TableHeader:
    """Map header cells to fields; ParseError when a required column is missing."""
    names = [column_field(c, overrides) for c in cells]
    missing = _missing_columns(set(names))
    if missing:
        looks_like_data = any(re.search(r"\d{1,4}[/-]\d{1,2}[/-]\d{2,4}", c) for c in cells)
        hint = " (the first row looks like data: add the header row)" if looks_like_data else ""
        raise ParseError(
            f"the header (row {number}) has no {' and no '.join(m.replace('_', ' ') for m in missing)} "
            f"column{hint}. The first row must name the columns, as in the template "
            "docs/templates/community-timelines-template.csv, or map yours with "
            "--columns 'Your header=received_date,...' (docs/ingest.md)"
        )
    seen: set[str] = set()
    fields: list[str | None] = []
    ignored: list[str] = []
    for cell, name in zip(cells, names, strict=True):
        if name is None or name in seen:
            if cell.strip():
                ignored.append(cell.strip())
            fields.append(None)
        else:
            seen.add(name)
            fields.append(name)
    return TableHeader(fields, ignored, number)


def _missing_columns(names: set[str | None]) -> list[str]:
    """The required columns a header lacks: a form type, and a received date (or, for a
    status snapshot, a receipt number and a status)."""
    missing = [] if "form_type" in names else ["form_type"]
    if "received_date" not in names and not {"receipt_number", "status"} <= names:
        missing.append("received_date")
    return missing


def parse_csv(text: str, overrides: dict[str, str | None] | None = None) -> TimelineRows:
    """Read every row of a pasted CSV; rows with problems are listed in `errors` as 'row N: ...'."""
    rows = TimelineRows()
    headers: list[TableHeader] = []
    try:
        for row in iter_rows(io.StringIO(text.lstrip("\ufeff"), newline=""), overrides, headers):
            if row.timeline is not None:
                rows.timelines.append(row.timeline)
            elif row.error is not None:
                rows.errors.append(f"row {row.number}: {row.error}")
    except ParseError as error:
        if "is empty" in str(error):
            detail = "has only empty cells" if text.strip() else "file is empty"
            raise ParseError(
                f"the CSV {detail}: it needs a header row and one row per case"
            ) from error
        raise
    if headers:
        rows.ignored = headers[0].ignored
    if not headers:
        raise ParseError("the CSV has only empty cells: it needs a header row and one row per case")
    if not rows.timelines and not rows.errors:
        raise ParseError(
            f"the CSV has a header (row {headers[0].row}) but no rows of cases under it"
        )
    return rows
