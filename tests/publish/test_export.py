"""`timelines export DIR`: aggregated, suppressed tables as CSV and Parquet with a dictionary."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

import timelines.commands.analytics  # noqa: F401  (registers the commands)
from pipeline.publish.export import COLUMN_DOCS, EXPORTED_TABLES
from pipeline.settings import Settings
from tests.support.analytics_data import build_sample_home
from timelines.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A published synthetic sample (500 cases, so many groups are under k)."""
    return build_sample_home(tmp_path_factory.mktemp("export") / "home", n_cases=500, seed=3)


@pytest.fixture
def exported(
    sample_home: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    monkeypatch.setenv("TIMELINES_HOME", str(sample_home.home))
    out = tmp_path / "open-data"
    result = runner.invoke(app, ["export", str(out)])
    assert result.exit_code == 0, result.output
    assert "data_dictionary.md" in result.output
    return out


def test_every_table_is_written_as_csv_and_parquet_with_the_same_rows(exported: Path) -> None:
    for name in EXPORTED_TABLES:
        parquet = pl.read_parquet(exported / f"{name}.parquet")
        with (exported / f"{name}.csv").open() as handle:
            header, *rows = list(csv.reader(handle))
        assert header == parquet.columns
        assert len(rows) == parquet.height
    assert pl.read_parquet(exported / "processing_times.parquet").height > 100


def test_nothing_per_case_leaves(exported: Path, sample_home: Settings) -> None:
    sample_receipts = {
        line.split('"receiptNumber": "')[1][:13]
        for f in (sample_home.home / "sample").iterdir()
        for line in f.read_text().replace('":"', '": "').splitlines()
        if '"receiptNumber": "' in line
    }
    assert sample_receipts
    for path in exported.iterdir():
        text = path.read_bytes().decode("utf-8", "replace")
        assert not any(receipt in text for receipt in list(sample_receipts)[:200]), path.name
        if path.suffix == ".parquet":
            columns = set(pl.read_parquet(path).columns)
            assert not columns & {"case_id", "receipt_number", "received_date", "duration_days"}
    assert not (exported / "durations.csv").exists()


def test_suppressed_groups_carry_no_count_and_no_figure(exported: Path) -> None:
    keys = {"grouping", "office_basis", "form_type", "office", "cohort", "segment", "day",
            "decision_month", "week", "suppressed", "computed_at", "processing", "category"}
    seen_suppressed = 0
    for name in EXPORTED_TABLES:
        frame = pl.read_parquet(exported / f"{name}.parquet")
        if "suppressed" not in frame.columns:
            continue
        hidden = frame.filter(pl.col("suppressed"))
        seen_suppressed += hidden.height
        for column in set(frame.columns) - keys:
            assert hidden[column].null_count() == hidden.height, (name, column)
    assert seen_suppressed > 0


def test_the_dictionary_documents_every_column(exported: Path) -> None:
    with (exported / "data_dictionary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    for name in EXPORTED_TABLES:
        columns = pl.read_parquet(exported / f"{name}.parquet").columns
        documented = [r["column"] for r in rows if r["table"] == name]
        assert documented == columns
    assert all(r["description"] for r in rows), [r["column"] for r in rows if not r["description"]]
    assert set(COLUMN_DOCS) >= {r["column"] for r in rows}
    text = (exported / "data_dictionary.md").read_text()
    assert "SYNTHETIC" in text and "fewer than 10 cases are suppressed" in text


def test_exporting_without_published_statistics_says_what_to_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(tmp_path / "out")])
    assert result.exit_code != 0
    assert "timelines refresh" in str(result.exception)
