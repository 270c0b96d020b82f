"""Opening the analytics DuckDB file and migrating its schema.

DuckDB lets one process hold a database file at a time: any other open connection, even a
read-only one, makes a writer's open fail. Only flows open this file; they retry for a while
when another flow holds it, then stop with a message that says so. The dashboard never opens
it: it reads the snapshots that `pipeline.publish.snapshot` writes.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class DatabaseBusyError(RuntimeError):
    """Another process holds the database file for longer than we were willing to wait."""


def _is_lock_error(error: duckdb.Error) -> bool:
    text = str(error)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(
    path: Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> duckdb.DuckDBPyConnection:
    """Open the database, retrying with back-off while another process holds its lock."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            if not read_only:  # DuckDB creates files with the umask: keep them private
                for private in (path, Path(f"{path}.wal")):
                    with suppress(OSError):
                        os.chmod(private, 0o600)
            # no progress bars: they would go to stdout, into a command's JSON output
            con.execute("SET enable_progress_bar = false")
            return con
        except duckdb.IOException as error:
            if not _is_lock_error(error):
                raise
            if time.monotonic() >= deadline:
                holder = re.search(r"PID (\d+)", str(error))
                who = f" (process {holder.group(1)})" if holder else ""
                raise DatabaseBusyError(
                    f"the database {path} is in use by another process{who} and stayed busy for "
                    f"{wait_seconds:.0f}s; wait for that flow to finish and run this again"
                ) from error
            sleep(delay + random.uniform(0, delay))
            delay = min(delay * 2, 2.0)


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: commit if it finishes, roll back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def first_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a result, reading it to the end (DuckDB refuses new work on a
    connection while a result is unfinished, so never `fetchone()` and leave the rest)."""
    rows = result.fetchall()
    return rows[0] if rows else None


@contextmanager
def open_store(path: Path, *, wait_seconds: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the database for writing, migrated to the latest schema, and close it after."""
    con = connect(path, wait_seconds=wait_seconds)
    try:
        migrate(con)
        yield con
    finally:
        con.close()


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the package, in order."""
    folder = resources.files("pipeline.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_RE.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """The migrations already applied to this database."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    return {int(row[0]) for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The newest migration applied to this database (0 for a new file)."""
    return max(applied_versions(con), default=0)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply, in order, every shipped migration not yet applied, each in its own transaction.

    Checking each version (not only those above the newest) means a migration that arrived
    on a branch merged later is still applied.
    """
    done = applied_versions(con)
    applied = []
    for version, name, sql in available_migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)", [version, name]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def query_frame(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pl.DataFrame:
    """Run a query and return a polars DataFrame (DuckDB 2 has .pl() on relations only)."""
    frame: pl.DataFrame = con.sql(sql, params=params).pl()
    return frame
