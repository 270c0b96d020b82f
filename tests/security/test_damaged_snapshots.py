"""Attacks on what readers read: a damaged snapshot pointer, a deleted snapshot folder.

The review saw a traceback with server paths on every page for a damaged pointer, and no
figures at all for a deleted snapshot folder although two older good snapshots existed.
Expected: the pointer is checked, the newest valid snapshot is shown with a notice, and no
traceback or server path reaches a page.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pipeline.settings import Settings
from tests.security.attack_data import office_cases, refresh
from tests.support.analytics_data import store_cases
from tests.support.cli import timelines
from tests.support.dashboard import APP


def _three_snapshots(settings: Settings) -> list[Path]:
    store_cases(settings, office_cases("n", "NSC", 30, 20))
    for _ in range(3):
        refresh(settings.home)
    return sorted(p for p in settings.published_dir.iterdir() if p.is_dir() and p.name[0] != ".")


def _page(home: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("TIMELINES_HOME", str(home))
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/processing_times.py").run()
    return at


def _said(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in [*at.markdown, *at.error, *at.warning, *at.info,
                                             *at.sidebar.warning, *at.exception])


@pytest.mark.parametrize("pointer", ["../../../etc", "20991231T000000000000"])
def test_a_damaged_pointer_falls_back_to_the_newest_good_snapshot(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, pointer: str
) -> None:
    snapshots = _three_snapshots(settings)
    (settings.published_dir / "CURRENT").write_bytes(pointer.encode("utf-8", "surrogateescape"))
    done = timelines("stats", home=settings.home)
    assert done.returncode == 0, done.stderr
    assert "damaged" in done.stderr and "NSC" in done.stdout
    at = _page(settings.home, monkeypatch)
    assert not at.exception
    assert any("last good ones" in str(w.value) for w in at.sidebar.warning)
    assert str(settings.home) not in _said(at) and "Traceback" not in _said(at)
    assert snapshots[-1].name in {p.name for p in settings.published_dir.iterdir()}


def test_a_deleted_snapshot_folder_falls_back_to_an_older_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    snapshots = _three_snapshots(settings)
    assert len(snapshots) == 3
    shutil.rmtree(snapshots[-1])
    done = timelines("stats", "--format", "json", home=settings.home)
    assert done.returncode == 0 and '"NSC"' in done.stdout, done.stderr
    at = _page(settings.home, monkeypatch)
    assert not at.exception and at.dataframe
    assert str(settings.home) not in _said(at)


def test_the_served_dashboard_shows_no_error_details() -> None:
    from timelines.cli import dashboard_command

    command = dashboard_command(Settings(Path("home")), 8501)
    assert command[command.index("--client.showErrorDetails") + 1] == "none"
    config = (APP.parents[1] / ".streamlit" / "config.toml").read_text()
    assert 'showErrorDetails = "none"' in config
