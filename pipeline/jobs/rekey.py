"""Rotating the pseudonym key: a new secret, and every case we can re-key moved onto it.

A pseudonym is HMAC(key, receipt), so moving a case to a new key needs its receipt number.
Only the registry keeps receipts (cases polled from the API); a case that came only from a
user submission has no receipt anywhere and keeps its old pseudonym. Such a case is still
counted and can still be deleted by its submission's code, but if the same receipt arrives
again after the rotation it is stored as a second case, since nothing can link the two.

The rotation is crash-safe: the new key is written beside the old one first, the database is
re-keyed in one transaction, then the key files are swapped. A run interrupted between the
last two steps is finished by the next `rotate_key`, which sees which key the data follows.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import polars as pl

from pipeline.inbox.folder import pending_files
from pipeline.jobs.forget import tables_with_cases
from pipeline.prepare.anonymize import KEY_ENV, PseudonymKey, load_key, pseudonymize
from pipeline.publish.snapshot import publish_snapshot
from pipeline.settings import Settings
from pipeline.sources.uscis.registry import Registry, registry_path
from pipeline.store.db import open_store, transaction


class RekeyError(RuntimeError):
    """The key cannot be rotated now; the message says why and what to do."""


@dataclass(frozen=True)
class RekeyResult:
    """What a rotation changed."""

    n_rekeyed: int  # cases moved to the new key (their receipt is in the registry)
    n_kept: int  # cases that keep their old pseudonym (no receipt known)
    rows_by_table: dict[str, int]
    retired_key: Path


def rotate_key(settings: Settings, now: datetime | None = None) -> RekeyResult:
    """Generate a new key, re-key every case whose receipt is tracked, swap the key files."""
    now = now or datetime.now()
    if settings.pseudonym_key is not None:
        raise RekeyError(
            f"the key comes from {KEY_ENV}, not from a key file: unset it to rotate the file "
            f"{settings.key_path}, or rotate by hand (see docs/operations.md)"
        )
    if not settings.key_path.exists() or not settings.database_path.exists():
        raise RekeyError(f"there is no key file or database in {settings.home} to rotate")
    if pending_files(settings.inbox_dir):
        raise RekeyError(
            "submissions are waiting in the inbox, pseudonymized with the current key: store "
            "them first (`timelines ingest --inbox`), then rotate"
        )
    staged = settings.key_path.with_name(settings.key_path.name + ".new")
    old = load_key(settings.key_path)
    new = load_key(staged) if staged.exists() else _write_new_key(staged)
    receipts = _tracked_receipts(settings)
    mapping = pl.DataFrame(
        {"old_id": [pseudonymize(r, old) for r in receipts],
         "new_id": [pseudonymize(r, new) for r in receipts]},
        schema={"old_id": pl.Utf8, "new_id": pl.Utf8},
    )
    with open_store(settings.database_path) as con:
        if _follows(con, mapping["new_id"]) and not _follows(con, mapping["old_id"]):
            rows: dict[str, int] = {}  # an interrupted run re-keyed the data already
        else:
            rows = _rekey(con, mapping)
        n_rekeyed = _count(con, "SELECT count(*) FROM cases WHERE case_id IN"
                                " (SELECT new_id FROM rekey_map)", mapping)
        n_kept = _count(con, "SELECT count(*) FROM cases", mapping) - n_rekeyed
        retired = settings.key_path.with_name(f"{settings.key_path.name}.retired-{now:%Y%m%dT%H%M%S}")
        shutil.copyfile(settings.key_path, retired)
        os.chmod(retired, 0o600)
        os.replace(staged, settings.key_path)
        publish_snapshot(con, settings.published_dir, settings.min_group_size)
    return RekeyResult(n_rekeyed, n_kept, rows, retired)


def _write_new_key(path: Path) -> PseudonymKey:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32))
        handle.flush()
        os.fsync(handle.fileno())
    return load_key(path)


def _tracked_receipts(settings: Settings) -> list[str]:
    path = registry_path(settings.home)
    if not path.exists():
        return []
    with Registry(path) as registry:
        return sorted(registry.receipts())


def _rekey(con: duckdb.DuckDBPyConnection, mapping: pl.DataFrame) -> dict[str, int]:
    """Move every row of every case-keyed table to the new pseudonyms, in one transaction."""
    rows = {}
    con.register("rekey_map", mapping)
    try:
        with transaction(con):
            for table in tables_with_cases(con):
                [(n,)] = con.execute(
                    f'UPDATE "{table}" SET case_id = m.new_id FROM rekey_map m'
                    f' WHERE "{table}".case_id = m.old_id'
                ).fetchall()
                rows[table] = int(n)
    finally:
        con.unregister("rekey_map")
    return rows


def _follows(con: duckdb.DuckDBPyConnection, ids: pl.Series) -> bool:
    frame = pl.DataFrame({"case_id": ids})
    return _count(con, "SELECT count(*) FROM cases JOIN probe USING (case_id)", frame,
                  name="probe") > 0


def _count(con: duckdb.DuckDBPyConnection, sql: str, frame: pl.DataFrame,
           name: str = "rekey_map") -> int:
    con.register(name, frame)
    try:
        return int(con.execute(sql).fetchall()[0][0])
    finally:
        con.unregister(name)
