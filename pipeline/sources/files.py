"""Reading case-history documents from files and folders.

A .json file holds one document (a single answer, or a list of answers pasted together);
a .jsonl/.ndjson file holds one document per line. Each document is capped in size, since
a paste larger than that is not a case history. A .csv/.tsv file is a table of timelines,
one row per case: `open_table` streams its lines (pipeline.parse.csv_import reads them).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

import orjson

from pipeline.receipts import RECEIPT_IN_TEXT_RE

MAX_DOCUMENT_BYTES = 1_000_000
JSON_SUFFIXES = {".json"}
LINES_SUFFIXES = {".jsonl", ".ndjson"}
TABLE_SUFFIXES = {".csv", ".tsv"}
INPUT_SUFFIXES = JSON_SUFFIXES | LINES_SUFFIXES | TABLE_SUFFIXES


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One document as read: where it came from, its bytes and when it was observed."""

    origin: str
    content: bytes
    observed_at: datetime
    read_error: str | None = None


class InputError(ValueError):
    """A path that cannot be read as input at all."""


def scrub(text: str) -> str:
    """Replace anything that looks like a receipt number, so origins can be stored."""
    return RECEIPT_IN_TEXT_RE.sub("<receipt>", text)


def discover_files(paths: Iterable[Path]) -> list[Path]:
    """Expand folders into the input files they contain, sorted; refuse missing paths."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
            )
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path} does not exist")
    return found


def is_table(path: Path) -> bool:
    """Tell whether a file is a table of timelines: .csv/.tsv, or a named file that is not JSON."""
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return True
    if suffix in JSON_SUFFIXES | LINES_SUFFIXES:
        return False
    try:
        with path.open("rb") as handle:
            start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError:
        return False
    return bool(start) and start[:1] not in (b"{", b"[")


def open_table(path: Path) -> TextIO:
    """Open a table for streaming: UTF-8 (with or without a byte-order mark), lines untranslated.

    A byte that is not UTF-8 (a spreadsheet saved as Windows-1252) becomes U+FFFD: only in
    columns we never read (names, notes) does that matter, and there it does not.
    """
    return path.open("r", encoding="utf-8-sig", errors="replace", newline="")


def document_origin(file_number: int, line: int | None = None) -> str:
    """An opaque origin: the file's number in this run (and the line), never its name.

    File names often hold names, A-numbers or e-mails; the run id is stored beside the
    origin, so (run, file number) identifies the input for an operator who has the files.
    """
    return f"file {file_number}" + (f" line {line}" if line is not None else "")


def read_documents(
    paths: Iterable[Path], numbers: Mapping[Path, int] | None = None
) -> Iterator[RawDocument]:
    """Yield every document in the given JSON files and folders (tables are read apart).

    Files are numbered in order, or by `numbers` (the file's place among all of a run's inputs).
    """
    for position, file in enumerate(discover_files(paths), start=1):
        file_number = numbers.get(file, position) if numbers else position
        name = document_origin(file_number)
        try:
            observed = datetime.fromtimestamp(file.stat().st_mtime)
            if file.suffix.lower() in LINES_SUFFIXES:
                with file.open("rb") as handle:
                    for number, line in enumerate(handle, start=1):
                        if line.strip():
                            yield RawDocument(document_origin(file_number, number), line, observed)
            else:
                yield RawDocument(name, file.read_bytes(), observed)
        except OSError as error:  # unreadable: quarantined with its reason, the rest goes on
            yield RawDocument(name, b"", datetime.now(), read_error=error.strerror or str(error))


def decode(document: RawDocument) -> object:
    """Decode one document's JSON, or raise ValueError with a message a user can act on."""
    if document.read_error is not None:
        raise ValueError(f"the file could not be read ({document.read_error})")
    if len(document.content) > MAX_DOCUMENT_BYTES:
        raise ValueError(
            f"the input is {len(document.content) / 1e6:.1f} MB; a case history is far smaller "
            f"(limit {MAX_DOCUMENT_BYTES / 1e6:.0f} MB). Paste only the JSON of one case"
        )
    try:
        return orjson.loads(document.content)
    except orjson.JSONDecodeError as error:
        raise ValueError(
            f"this is not valid JSON ({error}); copy the whole answer, from the first {{ to the last }}"
        ) from error


def fingerprint(content: bytes, secret: bytes) -> str:
    """A keyed hash of a document: identifies repeats without revealing the content."""
    return hmac.new(secret, content, hashlib.sha256).hexdigest()[:40]
