"""Reading JSON-lines files in bulk: whole blocks of a file split into lines as Arrow columns.

The per-document reader (`pipeline.sources.files.read_documents`) yields one Python object
per line; at a million lines that is most of an ingest. Here a file is read in large blocks,
split at newlines with numpy and handed on as an Arrow table that points into the blocks
(no copy per line), numbered exactly as the per-document reader numbers them: 1-based,
counting blank lines, which are skipped. A line the bulk reader cannot vouch for (too large,
not UTF-8) and a file that cannot be read are handed back as RawDocuments, so the
per-document path gives them the same rejection it always gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.sources.files import (
    LINES_SUFFIXES,
    MAX_DOCUMENT_BYTES,
    RawDocument,
    document_origin,
)

BLOCK_BYTES = 16 * 2**20
# Lines prepared together. With two cores, about four batches are in hand at once. A batch
# costs about 90 ms of planning and validation whatever its size, so larger ones are faster:
# at 1M histories 24 MB took 6 % less CPU than 16 MB and peaked near 860 MB (32 MB: 930 MB).
# Smaller batches toward the end of the input (a shorter tail) were slower still.
BATCH_BYTES = 24 * 2**20
_BLANK = b" \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of only these is skipped
LINE_SCHEMA = pa.schema([("file", pa.int32()), ("line", pa.int32()), ("text", pa.large_string())])



def _table(members: bytes) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    table[np.frombuffer(members, np.uint8)] = True
    return table


_BLANK_TABLE = _table(_BLANK)


@dataclass(frozen=True, slots=True)
class LineFile:
    """A file of a batch: its opaque origin ("file N"), when it was observed, and what its
    numbered parts are: lines (JSON lines) or items (a JSON array of answers)."""

    name: str
    observed_at: datetime
    unit: str = "line"


@dataclass
class LineBatch:
    """Lines of a few files as one Arrow table, and the documents only Python should read."""

    files: list[LineFile] = field(default_factory=list)
    blocks: list[pa.RecordBatch] = field(default_factory=list)
    odd: list[RawDocument] = field(default_factory=list)
    n_bytes: int = 0

    @property
    def lines(self) -> pa.Table:
        """Columns file (index into `files`), line (1-based number), text (the line, newline kept)."""
        return pa.Table.from_batches(self.blocks, schema=LINE_SCHEMA)

    @property
    def n_lines(self) -> int:
        """How many lines the table holds."""
        return sum(block.num_rows for block in self.blocks)


def is_lines_file(path: Path) -> bool:
    """Tell whether a file holds one document per line (.jsonl, .ndjson)."""
    return path.suffix.lower() in LINES_SUFFIXES


def is_array_file(path: Path) -> bool:
    """Tell whether a file is a bulk JSON array of answers: a .json file too large to be one
    case's history (MAX_DOCUMENT_BYTES) that starts with '['. Its items are read like lines;
    a smaller .json file stays one document (answers about one case pasted together)."""
    if path.suffix.lower() != ".json":
        return False
    try:
        if path.stat().st_size <= MAX_DOCUMENT_BYTES:
            return False
        with path.open("rb") as handle:
            start = handle.read(4096).lstrip(_BLANK + b"\xef\xbb\xbf")
    except OSError:
        return False
    return start.startswith(b"[")


def is_bulk_file(path: Path) -> bool:
    """Tell whether the bulk reader takes this file (JSON lines, or a bulk JSON array)."""
    return is_lines_file(path) or is_array_file(path)


def line_batches(files: Iterable[Path], batch_bytes: int = BATCH_BYTES,
                 block_bytes: int = BLOCK_BYTES, observed_at: datetime | None = None,
                 numbers: Mapping[Path, int] | None = None) -> Iterator[LineBatch]:
    """Yield the lines of JSON-lines files in batches of about `batch_bytes`, in file order.

    Each file's lines were observed when it was last modified, or at `observed_at` if given.
    """
    batch = LineBatch()
    for position, path in enumerate(files, start=1):
        # opaque, never the file's name; numbered like the per-document reader numbers it
        name = document_origin(numbers.get(path, position) if numbers else position)
        try:
            observed = observed_at or datetime.fromtimestamp(path.stat().st_mtime)
            index = len(batch.files)
            if is_array_file(path):
                batch.files.append(LineFile(name, observed, unit="item"))
                parts = _items(path, index, batch.files)
            else:
                batch.files.append(LineFile(name, observed))
                parts = _lines(path, index, batch.files, block_bytes)
            for part in parts:
                batch.blocks += part.blocks
                batch.odd += part.odd
                batch.n_bytes += part.n_bytes
                if batch.n_bytes >= batch_bytes:
                    yield batch
                    batch = LineBatch(files=list(batch.files))  # same indices for the next lines
        except OSError as error:  # unreadable: quarantined with its reason, the rest goes on
            batch.odd.append(RawDocument(name, b"", datetime.now(), read_error=error.strerror or str(error)))
    if batch.blocks or batch.odd:
        yield batch


def _blocks(path: Path, block_bytes: int) -> Iterator[np.ndarray]:
    """The file in blocks of whole lines (the last may lack its newline).

    Each block is read straight into an array of its own, which the lines' Arrow arrays then
    point into: its bytes are written once, by the read. (Joining the previous block's last
    part to a new read, and cutting it off again, copied all of them twice more.)"""
    carry = np.empty(0, dtype=np.uint8)
    with path.open("rb", buffering=0) as handle:
        while True:
            buffer = np.empty(carry.size + block_bytes, dtype=np.uint8)
            buffer[:carry.size] = carry
            got = handle.readinto(buffer[carry.size:].data)
            if not got:
                break
            data = buffer[:carry.size + got]
            end = _after_last_newline(data)
            if end == 0:
                carry = data.copy()  # one line longer than a block: keep reading
                continue
            carry = data[end:].copy()
            yield data[:end]
    if carry.size:
        yield carry


def _after_last_newline(data: np.ndarray) -> int:
    """Where the last line of data ends (after its newline), or 0 if no line ends in it."""
    for tail in (1 << 16, data.size):  # a block's last newline is almost always near its end
        newlines = np.flatnonzero(data[-tail:] == 10)
        if newlines.size:
            return data.size - min(tail, data.size) + int(newlines[-1]) + 1
    return 0


ITEMS_PER_READ = 10_000


def _lines(path: Path, file_index: int, files: list[LineFile], block_bytes: int) -> Iterator[LineBatch]:
    """The lines of a JSON-lines file, a block at a time (each a part of a batch)."""
    first_line = 1
    for block in _blocks(path, block_bytes):
        part = LineBatch(files=files)
        first_line += _split(block, file_index, first_line, part)
        yield part


def _items(path: Path, file_index: int, files: list[LineFile]) -> Iterator[LineBatch]:
    """The items of a JSON array file, about ITEMS_PER_READ at a time (each a part of a batch).

    DuckDB's `read_json_objects` hands each item back as the text it was written as (keys,
    numbers and duplicates as given), so an item is checked and parsed exactly as a line. If
    the file stops being valid JSON, the items before that point are kept and the rest of the
    file is one rejection saying where it broke.
    """
    import duckdb  # only a bulk array needs these here (pyarrow.compute: 30 ms at every start)
    import pyarrow.compute as pc

    read = 0  # items handed on so far
    con = duckdb.connect()
    reader: pa.RecordBatchReader | None = None
    try:
        while True:
            part = LineBatch(files=files)
            try:
                if reader is None:  # DuckDB reads the first items here already
                    reader = con.sql("SELECT json FROM read_json_objects(?, format = 'array')",
                                     params=[str(path)]).to_arrow_reader(ITEMS_PER_READ)
                items = reader.read_next_batch()
            except StopIteration:
                return
            except (duckdb.Error, pa.ArrowException, OSError) as error:  # OSError: via Arrow
                part.odd.append(RawDocument(files[file_index].name, b"", datetime.now(),
                                            read_error=_broken_array(str(error), read)))
                yield part
                return
            text = pc.cast(items.column(0), pa.large_string())
            numbers = np.arange(read + 1, read + 1 + items.num_rows, dtype=np.int32)
            read += items.num_rows
            lengths = pc.binary_length(text).to_numpy(zero_copy_only=False)
            large = lengths > MAX_DOCUMENT_BYTES
            if large.any():
                file = files[file_index]
                for i in np.flatnonzero(large):
                    part.odd.append(RawDocument(f"{file.name} item {numbers[i]}",
                                                 text[int(i)].as_py().encode(), file.observed_at))
                keep = _arrow(~large)
                text, numbers = pc.filter(text, keep), numbers[~large]
            if len(text):
                part.blocks.append(pa.record_batch(
                    [_arrow(np.full(len(text), file_index, dtype=np.int32)), _arrow(numbers), text],
                    schema=LINE_SCHEMA))
                part.n_bytes += int(lengths[~large].sum())
            yield part
    finally:
        con.close()


def _broken_array(error: str, read: int) -> str:
    """Why a JSON array file was not read to its end, from DuckDB's message (never the file's
    name, which DuckDB's message holds)."""
    item = re.search(r"record/value (\d+)", error)
    byte = re.search(r"at byte (\d+)", error)
    what = re.search(r"record/value \d+: ([^.]*)", error)
    where = f": item {item.group(1)} is broken" if item else ""
    if item and byte:
        where += f" at its byte {byte.group(1)}"
    if what:
        where += f" ({what.group(1).strip()})"
    kept = (f"the {read} items before it were read, the rest of the file was not" if read
            else "nothing of the file was stored")
    return (f"it is not a valid JSON array{where}; {kept}. Fix the file there, or cut it, and "
            "ingest it again")


def _split(raw: np.ndarray, file_index: int, first_line: int, batch: LineBatch) -> int:
    """Split one block at newlines into the batch's table; odd lines become RawDocuments.
    Returns how many lines the block holds, blank ones included."""
    block = raw.data
    newlines = np.flatnonzero(raw == 10)
    ends = newlines + 1
    if ends.size == 0 or ends[-1] != raw.size:
        ends = np.append(ends, raw.size)
    starts = np.concatenate(([0], ends[:-1]))
    count = int(starts.size)
    numbers = np.arange(first_line, first_line + count, dtype=np.int64)
    lengths = ends - starts
    keep = np.ones(starts.size, dtype=bool)
    # a line is blank when strip() leaves nothing: only lines that start with a blank can be
    first = raw[starts[lengths > 0]]
    maybe_blank = np.flatnonzero(lengths == 0)
    starts_blank = np.flatnonzero(lengths > 0)[_BLANK_TABLE[first]]
    for i in np.concatenate((maybe_blank, starts_blank)):
        if not bytes(block[starts[i]:ends[i]]).strip():
            keep[i] = False
    observed = batch.files[file_index].observed_at
    name = batch.files[file_index].name
    for i in np.flatnonzero(keep & (lengths > MAX_DOCUMENT_BYTES)):
        batch.odd.append(RawDocument(f"{name} line {numbers[i]}", bytes(block[starts[i]:ends[i]]), observed))
        keep[i] = False
    starts, ends, numbers = starts[keep], ends[keep], numbers[keep]
    if starts.size == 0:
        return count
    text = _strings(block, starts, ends)
    if text is None:  # some line is not UTF-8: find it, hand it to the per-document path
        good = np.ones(starts.size, dtype=bool)
        for i in range(starts.size):
            try:
                str(block[starts[i]:ends[i]], "utf-8")
            except UnicodeDecodeError:
                good[i] = False
                batch.odd.append(RawDocument(f"{name} line {numbers[i]}", bytes(block[starts[i]:ends[i]]),
                                             observed))
        starts, ends, numbers = starts[good], ends[good], numbers[good]
        text = _strings(block, starts, ends) if starts.size else None
        if text is None:
            return count
    batch.blocks.append(pa.record_batch(
        [_arrow(np.full(starts.size, file_index, dtype=np.int32)),
         _arrow(numbers.astype(np.int32)), text],
        schema=LINE_SCHEMA,
    ))
    batch.n_bytes += int((ends - starts).sum())
    return count


def _arrow(values: np.ndarray) -> pa.Array:
    """A numpy array as an Arrow array, zero-copy. (`pa.array` would first ask whether it is
    a pandas object, which imports pandas: 0.8 s at the start of every ingest.)"""
    if values.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), values.size, [None, pa.py_buffer(np.packbits(
            values, bitorder="little"))])
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), values.size,
                                 [None, pa.py_buffer(np.ascontiguousarray(values))])


def _strings(block: memoryview, starts: np.ndarray, ends: np.ndarray) -> pa.Array | None:
    """The lines as one Arrow string array over the block's bytes, or None if one is not UTF-8."""
    if np.array_equal(starts[1:], ends[:-1]):
        offsets = np.append(starts, ends[-1]).astype(np.int64)
        data = pa.py_buffer(block)
    else:  # skipped lines in between: copy the kept ones together
        pieces = [block[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
        joined = b"".join(pieces)
        offsets = np.concatenate(([0], np.cumsum(ends - starts))).astype(np.int64)
        data = pa.py_buffer(joined)
    array = pa.LargeStringArray.from_buffers(starts.size, pa.py_buffer(offsets.tobytes()), data)
    try:
        array.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return array

