"""`timelines rotate-key`: a new pseudonym key, tracked cases moved onto it, the rest kept."""

from __future__ import annotations

import json
import stat
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.rekey import RekeyError, rotate_key
from pipeline.prepare.anonymize import load_key, pseudonymize
from pipeline.settings import Settings, load_settings
from pipeline.sources.sample import write_sample
from pipeline.sources.uscis.registry import Registry, registry_path
from tests.support.cli import timelines


def sample_receipts(folder: Path) -> list[str]:
    found = []
    for file in sorted(folder.glob("*.jsonl")):
        for line in file.read_text().splitlines():
            doc = json.loads(line)
            body = doc.get("case_status") or doc.get("data")
            found.append(body["receiptNumber"])
    return found


def case_ids(settings: Settings, table: str = "cases") -> set[str]:
    con = duckdb.connect(str(settings.database_path), read_only=True)
    try:
        return {r[0] for r in con.execute(f"SELECT DISTINCT case_id FROM {table}").fetchall()}
    finally:
        con.close()


@pytest.fixture
def home(settings: Settings, tmp_path: Path) -> tuple[Settings, list[str], list[str]]:
    """200 stored cases; the first 120 receipts are tracked (as polled cases are)."""
    write_sample(tmp_path / "sample", 200, seed=12, as_of=date(2025, 6, 1))
    ingest_job.ingest(settings, [tmp_path / "sample"])
    refresh_job.refresh(settings)
    receipts = sample_receipts(tmp_path / "sample")
    tracked, untracked = receipts[:120], receipts[120:]
    with Registry(registry_path(settings.home)) as registry:
        registry.add(tracked, now=datetime.now())
    return settings, tracked, untracked


@pytest.mark.slow
def test_rotation_moves_tracked_cases_and_keeps_the_others(
    home: tuple[Settings, list[str], list[str]], tmp_path: Path
) -> None:
    settings, tracked, untracked = home
    old = load_key(settings.key_path)
    before_events = case_ids(settings, "status_events")

    done = timelines("rotate-key", "--yes", home=settings.home)
    assert done.returncode == 0, done.stderr
    assert "120 case(s) re-keyed" in done.stdout and "80 case(s) known only" in done.stdout

    new = load_key(settings.key_path)
    assert new.secret != old.secret
    assert stat.S_IMODE(settings.key_path.stat().st_mode) == 0o600
    ids = case_ids(settings)
    assert {pseudonymize(r, new) for r in tracked} <= ids
    assert not {pseudonymize(r, old) for r in tracked} & ids
    assert {pseudonymize(r, old) for r in untracked} <= ids and len(ids) == 200
    events = case_ids(settings, "status_events")
    assert len(events) == len(before_events) and {pseudonymize(r, new) for r in tracked} <= events
    [retired] = settings.home.glob("pseudonym.key.retired-*")
    assert load_key(retired).secret == old.secret

    # the consequence, as documented: the same histories again merge where the receipt was
    # tracked, and count twice where it was not
    again = ingest_job.ingest(settings, [tmp_path / "sample"])
    assert again.n_new_cases == len(untracked)


def test_an_interrupted_rotation_is_finished_not_repeated(
    home: tuple[Settings, list[str], list[str]],
) -> None:
    settings, tracked, _ = home
    old_text = settings.key_path.read_text()
    rotate_key(settings)
    new_text = settings.key_path.read_text()
    # the files as a crash between re-keying the database and swapping the keys leaves them
    (settings.home / "pseudonym.key.new").write_text(new_text)
    settings.key_path.write_text(old_text)

    rotate_key(settings)
    assert settings.key_path.read_text() == new_text
    assert not (settings.home / "pseudonym.key.new").exists()
    new = load_key(settings.key_path)
    assert {pseudonymize(r, new) for r in tracked} <= case_ids(settings)


def test_rotation_waits_for_the_inbox_and_refuses_a_key_from_the_environment(
    home: tuple[Settings, list[str], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _, _ = home
    pending = settings.inbox_dir / "pending"
    pending.mkdir(parents=True)
    (pending / "s_20250101T000000_abc.json").write_text("{}")
    with pytest.raises(RekeyError, match="store them first"):
        rotate_key(settings)
    (pending / "s_20250101T000000_abc.json").unlink()
    monkeypatch.setenv("TIMELINES_PSEUDONYM_KEY", "k" * 64)
    with pytest.raises(RekeyError, match="TIMELINES_PSEUDONYM_KEY"):
        rotate_key(load_settings())
