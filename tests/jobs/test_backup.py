"""`timelines backup` and `timelines restore` as an operator runs them, on a real home."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipeline.inbox.consent import give_consent
from pipeline.inbox.folder import pending_files, write_submission
from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.prepare.anonymize import load_key, pseudonymize
from pipeline.prepare.preview import preview_submission
from pipeline.publish.reader import current_snapshot
from pipeline.settings import Settings
from pipeline.sources.sample import write_sample
from pipeline.sources.uscis.registry import Registry, registry_path
from tests.support.cli import timelines
from tests.support.submission_inputs import simplified

TRACKED = ["EAC2190000101", "LIN2290000202", "IOE0912345678"]


def everything(database: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = [t for (t,) in con.execute(
            "SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with stored and computed cases, tracked receipts and a waiting submission."""
    settings = Settings(tmp_path_factory.mktemp("original") / "home")
    write_sample(settings.home.parent / "sample", 500, seed=9, as_of=date(2025, 6, 1))
    ingest_job.ingest(settings, [settings.home.parent / "sample"])
    refresh_job.refresh(settings)
    refresh_job.publish(settings)
    with Registry(registry_path(settings.home)) as registry:
        registry.add(TRACKED, now=datetime.now() - timedelta(days=1))
    now = datetime.now()
    preview = preview_submission(json.dumps(simplified()), key=load_key(settings.key_path), now=now)
    write_submission(settings.inbox_dir, preview, give_consent(now), now=now)
    return settings


@pytest.fixture(scope="module")
def backup_dir(original: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("backups") / "2025-06-01"
    made = timelines("backup", str(target), home=original.home)
    assert made.returncode == 0, made.stderr
    assert "500 cases" in made.stdout and "checksums in manifest.json" in made.stdout
    assert "contains the secret pseudonym key" in made.stderr
    return target


def test_the_backup_holds_every_store_with_checksums(backup_dir: Path) -> None:
    manifest = json.loads((backup_dir / "manifest.json").read_text())
    assert manifest["key_included"] and manifest["schema_version"] >= 5
    assert manifest["counts"]["cases"] == 500
    files = set(manifest["files"])
    assert {"timelines.duckdb", "registry.sqlite", "pseudonym.key"} <= files
    assert any(f.startswith("inbox/pending/") for f in files)
    assert not any(f.startswith("published/") for f in files)
    assert stat.S_IMODE((backup_dir / "pseudonym.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((backup_dir / "registry.sqlite").stat().st_mode) == 0o600
    assert stat.S_IMODE(backup_dir.stat().st_mode) == 0o700


@pytest.mark.slow
def test_restore_round_trip_gives_the_same_stores_and_pseudonyms(
    original: Settings, backup_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "restored"
    done = timelines("restore", str(backup_dir), home=home)
    assert done.returncode == 0, done.stderr
    assert "checksums verified" in done.stdout and "published a fresh snapshot" in done.stdout

    assert everything(home / "timelines.duckdb") == everything(original.database_path)
    restored_key = load_key(home / "pseudonym.key")
    assert [pseudonymize(r, restored_key) for r in TRACKED] == [
        pseudonymize(r, load_key(original.key_path)) for r in TRACKED]
    with Registry(registry_path(home)) as registry:
        assert registry.receipts() == set(TRACKED)
    assert [p.read_bytes() for p in pending_files(home / "inbox")] == [
        p.read_bytes() for p in pending_files(original.inbox_dir)]
    snapshot = current_snapshot(home / "published")
    assert snapshot.meta["n_cases"] == 500 and snapshot.table("case_stats").height > 0
    assert stat.S_IMODE((home / "pseudonym.key").stat().st_mode) == 0o600

    # the restored home works: the waiting submission is stored, with the restored key
    inbox = timelines("ingest", "--inbox", "--format", "json", home=home)
    assert inbox.returncode == 0, inbox.stderr
    assert json.loads(inbox.stdout)["stored_cases"] == 1
    con = duckdb.connect(str(home / "timelines.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT run_id FROM ingest_runs ORDER BY run_id").fetchall()
    finally:
        con.close()
    assert len(runs) == len(set(runs))  # run ids go on from where the backup left them


@pytest.mark.slow
def test_restore_refuses_a_home_that_is_not_empty_unless_forced(
    backup_dir: Path, tmp_path: Path
) -> None:
    home = tmp_path / "busy"
    home.mkdir()
    (home / "pseudonym.key").write_text("x" * 64)
    refused = timelines("restore", str(backup_dir), home=home)
    assert refused.returncode == 2 and "is not empty" in refused.stderr and "--force" in refused.stderr
    assert (home / "pseudonym.key").read_text() == "x" * 64

    forced = timelines("restore", str(backup_dir), "--force", home=home)
    assert forced.returncode == 0, forced.stderr
    [aside] = home.glob("replaced-*")
    assert (aside / "pseudonym.key").read_text() == "x" * 64  # kept, not deleted
    assert (home / "pseudonym.key").read_bytes() == (backup_dir / "pseudonym.key").read_bytes()


def test_a_damaged_backup_is_refused_and_the_home_left_alone(
    backup_dir: Path, tmp_path: Path
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(backup_dir, damaged)
    registry = damaged / "registry.sqlite"
    content = bytearray(registry.read_bytes())
    content[-1] ^= 0xFF
    registry.write_bytes(bytes(content))
    home = tmp_path / "home"
    refused = timelines("restore", str(damaged), home=home)
    assert refused.returncode == 2
    assert "damaged: registry.sqlite does not match its checksum" in refused.stderr
    assert not home.exists() or not any(home.iterdir())


def test_a_different_key_in_the_environment_is_refused(backup_dir: Path, tmp_path: Path) -> None:
    refused = timelines("restore", str(backup_dir), home=tmp_path / "home",
                        TIMELINES_PSEUDONYM_KEY="k" * 64)
    assert refused.returncode == 2 and "different key" in refused.stderr


def test_backup_refuses_a_folder_that_is_not_empty(original: Settings, tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "something").write_text("keep me")
    refused = timelines("backup", str(tmp_path / "old"), home=original.home)
    assert refused.returncode == 2 and "not empty" in refused.stderr
    assert (tmp_path / "old" / "something").read_text() == "keep me"


@pytest.mark.slow
def test_a_key_given_by_the_environment_is_not_backed_up_and_is_asked_for(
    tmp_path: Path,
) -> None:
    key = {"TIMELINES_PSEUDONYM_KEY": "e" * 64}
    home = tmp_path / "home"
    write_sample(tmp_path / "sample", 50, seed=2, as_of=date(2025, 6, 1))
    assert timelines("ingest", str(tmp_path / "sample"), home=home, **key).returncode == 0
    made = timelines("backup", str(tmp_path / "backup"), home=home, **key)
    assert made.returncode == 0, made.stderr
    assert "NOT in this backup" in made.stderr and not (tmp_path / "backup" / "pseudonym.key").exists()

    refused = timelines("restore", str(tmp_path / "backup"), home=tmp_path / "new")
    assert refused.returncode == 2 and "holds no pseudonym key" in refused.stderr
    restored = timelines("restore", str(tmp_path / "backup"), home=tmp_path / "new", **key)
    assert restored.returncode == 0, restored.stderr
    assert not (tmp_path / "new" / "pseudonym.key").exists()
    assert everything(tmp_path / "new" / "timelines.duckdb") == everything(home / "timelines.duckdb")
