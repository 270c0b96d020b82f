"""A community spreadsheet of timelines (one row per case) exported as CSV.

The columns are the typed-form fields (see docs/templates/community-timelines-template.csv);
common header spellings are understood ("Receipt Date", "Bio", "Approval"). The usual
spreadsheet mess is tolerated: a byte-order mark, ',' ';' or tab separators, CRLF or CR
line endings, stray whitespace, m/d/yy dates, blank rows, and '.', '-', 'n/a' or 'pending'
for a missing date. Columns we do not know (names, notes, usernames) are never read.
"""

from __future__ import annotations

import csv
import io
import re

from pipeline.parse.errors import ParseError
from pipeline.parse.typed_form import TimelineRows, field_name, read_timeline

SOURCE = "csv_import"
_DELIMITERS = (",", ";", "\t")


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
            return "form_type" in names and "received_date" in names
    return False


def parse_csv(text: str) -> TimelineRows:
    """Read every row; rows with problems are listed in `errors` as 'row N: ...'."""
    rows = TimelineRows()
    body = normalize_lines(text)
    first = next((line for line in body.split("\n") if line.strip()), None)
    if first is None:
        raise ParseError("the CSV file is empty: it needs a header row and one row per case")
    delimiter = sniff_delimiter(first)
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    header: list[str | None] | None = None
    header_row = 0
    for number, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue
        if header is None:
            header, header_row = _header(cells, rows), number
            continue
        values: dict[str, object] = {}
        for name, cell in zip(header, cells, strict=False):
            if name is not None and (name not in values or not str(values[name]).strip()):
                values[name] = cell
        try:
            rows.timelines.append(read_timeline(values, f"row {number}", SOURCE))
        except ParseError as error:
            rows.errors.append(f"row {number}: {error}")
    if header is None:
        raise ParseError("the CSV has only empty cells: it needs a header row and one row per case")
    if not rows.timelines and not rows.errors:
        raise ParseError(
            f"the CSV has a header (row {header_row}) but no rows of cases under it"
        )
    return rows


def _header(cells: list[str], rows: TimelineRows) -> list[str | None]:
    names = [field_name(c) for c in cells]
    if "form_type" not in names or "received_date" not in names:
        looks_like_data = any(re.search(r"\d{1,4}[/-]\d{1,2}[/-]\d{2,4}", c) for c in cells)
        hint = " (the first row looks like data: add the header row)" if looks_like_data else ""
        missing = [n for n in ("form_type", "received_date") if n not in names]
        raise ParseError(
            f"the CSV header has no {' and no '.join(m.replace('_', ' ') for m in missing)} "
            f"column{hint}. The first row must name the columns, as in the template "
            "docs/templates/community-timelines-template.csv"
        )
    seen: set[str] = set()
    header: list[str | None] = []
    for cell, name in zip(cells, names, strict=True):
        if name is None or name in seen:
            if cell.strip():
                rows.ignored.append(cell.strip())
            header.append(None)
        else:
            seen.add(name)
            header.append(name)
    return header
