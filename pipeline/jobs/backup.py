"""Backing up and restoring the stores under TIMELINES_HOME, consistently and verifiably.

A backup is a folder: the analytics database (copied while this process holds it, after a
checkpoint, so no flow writes meanwhile), every registry file (through SQLite's backup API),
the submission inbox, the pseudonym key file (the secret that links receipts to stored cases)
and `manifest.json` with a SHA-256 of every file and the schema version. Published snapshots
are not backed up: a restore publishes a fresh one from the restored database.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import duckdb

from pipeline.prepare.anonymize import KEY_ENV
from pipeline.publish.snapshot import publish_snapshot
from pipeline.settings import Secret, Settings
from pipeline.store.db import available_migrations, connect, open_store, schema_version

FORMAT = "timelines-backup/1"
MANIFEST = "manifest.json"
DATABASE = "timelines.duckdb"
INBOX = "inbox"
KEY_FILE = "pseudonym.key"
REGISTRY_PREFIX = "registry"
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
_SQLITE_HEADER = b"SQLite format 3\x00"
_CHUNK = 1 << 20


class BackupError(RuntimeError):
    """A backup that cannot be made or restored; the message says why and what to do."""


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds, as written to manifest.json."""

    created_at: str
    schema_version: int
    files: dict[str, str]  # relative path -> sha256
    sizes: dict[str, int]
    key_included: bool
    counts: dict[str, int] = field(default_factory=dict)
    app_version: str = ""
    duckdb_version: str = ""

    def to_json(self) -> dict[str, object]:
        """The manifest as written to disk."""
        return {"format": FORMAT, "created_at": self.created_at,
                "schema_version": self.schema_version, "key_included": self.key_included,
                "app_version": self.app_version, "duckdb_version": self.duckdb_version,
                "counts": self.counts,
                "files": {p: {"sha256": h, "bytes": self.sizes[p]} for p, h in self.files.items()}}


@dataclass(frozen=True)
class RestoreResult:
    """What a restore put in place."""

    manifest: BackupManifest
    restored: list[str]
    moved_aside: Path | None
    migrations_applied: list[str]
    published: Path


def create_backup(settings: Settings, target: Path, now: datetime | None = None) -> BackupManifest:
    """Write a consistent backup of TIMELINES_HOME into the empty (or new) folder `target`."""
    now = now or datetime.now()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: back up into a new or empty folder")
    if target.resolve().is_relative_to(settings.home.resolve()):
        raise BackupError(f"{target} is inside TIMELINES_HOME ({settings.home}): back up elsewhere")
    if not settings.database_path.exists():
        raise BackupError(f"there is nothing to back up: {settings.database_path} does not exist")
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)  # it may hold the secret key and receipt numbers
    with open_store(settings.database_path) as con:  # waits for a running flow, then blocks others
        con.execute("CHECKPOINT")
        counts = _counts(con)
        version = schema_version(con)
        shutil.copyfile(settings.database_path, target / DATABASE)
    for registry in registry_files(settings.home):
        _backup_sqlite(registry, target / registry.name)
    if settings.inbox_dir.is_dir():
        shutil.copytree(settings.inbox_dir, target / INBOX, ignore=shutil.ignore_patterns(".tmp"))
    key_included = settings.key_path.exists()
    if key_included:
        shutil.copyfile(settings.key_path, target / KEY_FILE)
        os.chmod(target / KEY_FILE, 0o600)
    files = sorted(p for p in _walk(target) if p.name != MANIFEST)
    manifest = BackupManifest(
        created_at=now.isoformat(timespec="seconds"),
        schema_version=version,
        files={_relative(p, target): sha256_of(p) for p in files},
        sizes={_relative(p, target): p.stat().st_size for p in files},
        key_included=key_included,
        counts=counts,
        app_version=_version("uscis-timelines"),
        duckdb_version=duckdb.__version__,
    )
    (target / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n")
    make_private(target)
    return manifest


def make_private(folder: Path) -> None:
    """Every file under `folder` 0600 and every folder 0700: a backup holds the key and receipts."""
    os.chmod(folder, 0o700)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


def read_manifest(source: Path) -> BackupManifest:
    """Read and check a backup's manifest and every file's checksum; BackupError if damaged."""
    path = source / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise BackupError(f"{source} is not a backup: it has no {MANIFEST}") from error
    except (OSError, ValueError) as error:
        raise BackupError(f"the manifest of {source} cannot be read: {error}") from error
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{source} is not a backup made by `timelines backup` ({FORMAT})")
    files = {str(p): str(v["sha256"]) for p, v in data["files"].items()}
    manifest = BackupManifest(
        created_at=str(data["created_at"]),
        schema_version=int(data["schema_version"]),
        files=files,
        sizes={str(p): int(v["bytes"]) for p, v in data["files"].items()},
        key_included=bool(data["key_included"]),
        counts={str(k): int(v) for k, v in dict(data.get("counts") or {}).items()},
        app_version=str(data.get("app_version") or ""),
        duckdb_version=str(data.get("duckdb_version") or ""),
    )
    for relative, expected in files.items():
        file = source / relative
        if not file.is_file():
            raise BackupError(f"the backup is incomplete: {relative} is missing")
        if sha256_of(file) != expected:
            raise BackupError(f"the backup is damaged: {relative} does not match its checksum")
    if DATABASE not in files:
        raise BackupError(f"the backup has no {DATABASE}")
    return manifest


def restore_backup(
    settings: Settings, source: Path, *, force: bool = False, now: datetime | None = None
) -> RestoreResult:
    """Verify a backup, then put its stores in TIMELINES_HOME (moving any present ones aside)."""
    now = now or datetime.now()
    manifest = read_manifest(source)
    newest = max((v for v, _, _ in available_migrations()), default=0)
    if manifest.schema_version > newest:
        raise BackupError(
            f"the backup has schema version {manifest.schema_version}, newer than this program "
            f"knows ({newest}): upgrade uscis-timelines first, then restore"
        )
    _check_key(manifest, source, settings.pseudonym_key)
    home = settings.home
    present = sorted(p.name for p in home.iterdir()) if home.is_dir() else []
    if present and not force:
        raise BackupError(
            f"{home} is not empty ({', '.join(present[:5])}{', ...' if len(present) > 5 else ''}): "
            "restore into an empty TIMELINES_HOME, or add --force to replace what is there "
            "(the present files are moved aside, not deleted)"
        )
    if settings.database_path.exists():
        connect(settings.database_path, wait_seconds=5).close()  # refuse while a flow holds it
    settings.ensure_home()
    moved_aside = _move_aside(home, now) if present else None
    staging = home / f".restoring-{now:%Y%m%dT%H%M%S}"
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(MANIFEST))
    restored = []
    for entry in sorted(staging.iterdir()):
        os.replace(entry, home / entry.name)
        restored.append(entry.name)
    staging.rmdir()
    for private in [home / KEY_FILE, *registry_files(home)]:
        if private.exists():
            os.chmod(private, 0o600)
    with open_store(settings.database_path) as con:  # migrates an older backup to this version
        applied = [name for version, name, _ in available_migrations()
                   if version > manifest.schema_version]
        published = publish_snapshot(con, settings.published_dir, settings.min_group_size)
    return RestoreResult(manifest, restored, moved_aside, applied, published)


def registry_files(home: Path) -> list[Path]:
    """The SQLite registry files under TIMELINES_HOME (names starting with 'registry')."""
    if not home.is_dir():
        return []
    found = []
    for path in sorted(home.iterdir()):
        if not (path.is_file() and path.name.startswith(REGISTRY_PREFIX)):
            continue
        if path.name.endswith(_SQLITE_SIDE_FILES):
            continue  # folded into the main file by the backup API
        with path.open("rb") as handle:
            if handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER:
                found.append(path)
    return found


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _backup_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database consistently (other processes may be writing to it)."""
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = [name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1").fetchall()]
    return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]) for t in tables}


def _check_key(manifest: BackupManifest, source: Path, secret: Secret | None) -> None:
    given = secret.reveal() if secret is not None else None
    if not manifest.key_included and given is None:
        raise BackupError(
            f"the backup holds no pseudonym key (it was given by {KEY_ENV} when the backup was "
            f"made): set {KEY_ENV} to that key, then restore. Without it, cases polled or "
            "submitted from now on would not match the restored ones"
        )
    backed_up = (source / KEY_FILE).read_text().strip() if manifest.key_included else None
    if backed_up is not None and given is not None and backed_up != given:
        raise BackupError(
            f"{KEY_ENV} is set to a different key than the one in the backup: cases stored "
            f"from now on would not match the restored ones. Unset {KEY_ENV} (the restored "
            "key file is then used) or set it to the backed-up key"
        )


def _move_aside(home: Path, now: datetime) -> Path:
    aside = home / f"replaced-{now:%Y%m%dT%H%M%S}"
    aside.mkdir(mode=0o700)
    for entry in sorted(home.iterdir()):
        if entry != aside and not entry.name.startswith("replaced-"):
            os.replace(entry, aside / entry.name)
    return aside


def _walk(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""
