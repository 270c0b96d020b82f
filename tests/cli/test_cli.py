"""The `timelines` command as an operator runs it: a real process, a fresh TIMELINES_HOME."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import timelines

EXPECTED_FIELDS = {"form_type", "office", "n_cases", "n_decided", "n_pending", "median_days", "p80_days"}


@pytest.mark.slow
def test_sample_ingest_refresh_stats(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sample = timelines("sample", "--cases", "800", "--seed", "3", str(tmp_path / "in"), home=home)
    assert sample.returncode == 0, sample.stderr
    assert "synthetic" in sample.stdout

    ingest = timelines("ingest", str(tmp_path / "in"), home=home)
    assert ingest.returncode == 0, ingest.stderr
    assert "stored 800 cases" in ingest.stdout and "rejected 0" in ingest.stdout

    assert timelines("refresh", home=home).returncode == 0
    out = timelines("stats", "--format", "json", home=home)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert rows and all(set(row) >= EXPECTED_FIELDS for row in rows)
    assert sum(r["n_cases"] or 0 for r in rows) <= 800
    shown = [r for r in rows if not r["suppressed"]]
    assert all(r["n_decided"] + r["n_pending"] == r["n_cases"] for r in shown)

    only = json.loads(timelines("stats", "--form", "i485", "--office", "NSC", "--format", "json", home=home).stdout)
    assert {(r["form_type"], r["office"]) for r in only} == {("I-485", "NSC")}

    table = timelines("stats", "--form", "I-765", home=home)
    assert "SYNTHETIC" in table.stdout and "I-765" in table.stdout
    assert (home / "timelines.duckdb").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "/no/such/folder"), "does not exist"),
        (("stats",), "no statistics have been published"),
        (("stats", "--format", "xml"), "Invalid value for '--format'"),
    ],
)
@pytest.mark.slow
def test_errors_are_one_clear_line_and_a_non_zero_exit(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = timelines(*args, home=tmp_path / "empty")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_reported(tmp_path: Path) -> None:
    exe = shutil.which("timelines", path=str(Path(sys.executable).parent))
    assert exe
    env = dict(os.environ, TIMELINES_HOME=str(tmp_path), TIMELINES_MIN_GROUP_SIZE="many")
    result = subprocess.run([exe, "stats"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "TIMELINES_MIN_GROUP_SIZE" in result.stderr
