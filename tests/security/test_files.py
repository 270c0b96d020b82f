"""Attacks through files: names in file names, a FIFO behind a link, world-readable files.

- `timelines ingest` kept file names (names, A-numbers, e-mails, phone numbers) in
  `quarantine.origin` and in every backup. Expected: only an opaque (run, file number).
- A FIFO behind a link in the inbox hung the inbox run for ever while it held the database;
  `delete` hung too. Expected: only regular files are read; anything else is set aside.
- Backups were written 0644. Expected: database, registry, key, inbox, exports and backups
  are 0600 (files) and 0700 (folders).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import duckdb

from pipeline.settings import Settings
from tests.security.attack_data import cli_json
from tests.support.cli import timelines

NAME = "Maria_Gonzalez"
PERSONAL = (NAME, "A123456789", "maria.g@example.com", "555-123-4567")
TYPED = "form: I-765\noffice: NSC\nreceived: 2024-01-05\napproved: 2024-03-01\n"


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_file_names_are_never_stored_nor_backed_up(settings: Settings, tmp_path: Path) -> None:
    given = tmp_path / "drop"
    given.mkdir()
    (given / f"{'_'.join(PERSONAL)}.json").write_text('{"not a case": ')
    (given / f"{NAME} case.json").write_text("[1, 2")
    done = timelines("ingest", str(given), home=settings.home)
    assert done.returncode in (0, 1, 2), done.stderr
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        origins = sorted(r[0] for r in con.execute("SELECT origin FROM quarantine").fetchall())
        messages = [str(r[0]) for r in con.execute("SELECT message FROM ingest_runs").fetchall()]
    finally:
        con.close()
    assert origins == ["file 1", "file 2"]
    assert not any(p in m for p in PERSONAL for m in messages)
    backup = tmp_path / "backup"
    assert timelines("backup", str(backup), home=settings.home).returncode == 0
    stored = _all_bytes(backup) + settings.database_path.read_bytes()
    for personal in PERSONAL:
        assert personal.encode() not in stored, personal


def _plant_fifo(settings: Settings, tmp_path: Path) -> None:
    pending = settings.inbox_dir / "pending"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (pending / "s_20260101T000000_aaaaaaaaaaaa.json").symlink_to(fifo)
    os.mkfifo(pending / "s_20260101T000001_bbbbbbbbbbbb.json")


def test_a_fifo_behind_a_link_in_the_inbox_is_set_aside(settings: Settings, tmp_path: Path) -> None:
    typed = tmp_path / "mine.txt"
    typed.write_text(TYPED)
    queued = cli_json(settings.home, "submit", str(typed), "--consent", "--no-ingest")
    _plant_fifo(settings, tmp_path)
    done = timelines("ingest", "--inbox", home=settings.home, timeout=90)
    assert done.returncode == 0, done.stderr
    aside = sorted(p.name for p in (settings.inbox_dir / "unreadable").iterdir())
    assert aside == ["s_20260101T000000_aaaaaaaaaaaa.json", "s_20260101T000001_bbbbbbbbbbbb.json"]
    status = cli_json(settings.home, "submission-status", queued["deletion_code"])
    assert status["state"] == "received"  # the real submission went through


def test_delete_does_not_hang_on_a_fifo_in_the_inbox(settings: Settings, tmp_path: Path) -> None:
    typed = tmp_path / "mine.txt"
    typed.write_text(TYPED)
    queued = cli_json(settings.home, "submit", str(typed), "--consent", "--no-ingest")
    _plant_fifo(settings, tmp_path)
    done = timelines("delete", queued["deletion_code"], home=settings.home, timeout=90)
    assert done.returncode == 0, done.stderr
    assert "deleted" in done.stdout


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_files_are_created_0600_and_folders_0700(settings: Settings, tmp_path: Path) -> None:
    typed = tmp_path / "mine.txt"
    typed.write_text(TYPED)
    cli_json(settings.home, "submit", str(typed), "--consent")
    assert timelines("track", "add", "EAC9999103402", "--consent", home=settings.home).returncode == 0
    assert timelines("export", str(tmp_path / "open"), home=settings.home).returncode == 0
    assert timelines("backup", str(tmp_path / "backup"), home=settings.home).returncode == 0
    home = settings.home
    for private in (home / "timelines.duckdb", home / "registry.sqlite", home / "pseudonym.key"):
        assert _mode(private) == 0o600, private
    for root in (home / "inbox", tmp_path / "open", tmp_path / "backup"):
        assert _mode(root) == 0o700, root
        for path in root.rglob("*"):
            if not path.is_symlink():
                assert _mode(path) == (0o700 if path.is_dir() else 0o600), path
    assert _mode(home) == 0o700
