"""The command refuses values it does not know, with the choices, and groups its help."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import timelines


@pytest.mark.parametrize(("args", "says"), [
    (["stats", "--form", "I-9999"], "I-485, I-765"),
    (["stats", "--office", "XYZ"], "'nbc'"),
    (["stats", "--by", "month"], "'form-cohort'"),
    (["stats", "--format", "yaml"], "'json'"),
    (["estimate", "--form", "I-485", "--received", "2025-09-15", "--office", "ABC"], "'elis'"),
    (["trends", "--form", "X-1"], "write it like I-485"),
    (["stages", "--form", "I-458"], "not a USCIS form we know"),
])
def test_an_unknown_value_exits_2_listing_the_valid_choices(
    tmp_path: Path, args: list[str], says: str
) -> None:
    result = timelines(*args, home=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in " ".join((result.stdout + result.stderr).split())


def test_help_lists_choices_and_groups_commands(tmp_path: Path) -> None:
    stats_help = " ".join(timelines("stats", "--help", home=tmp_path).stdout.split())
    assert "<table|json>" in stats_help and "<intake|current>" in stats_help
    ingest_help = timelines("ingest", "--help", home=tmp_path).stdout
    assert not [line for line in ingest_help.splitlines() if "--inbox" in line and "<bool>" in line]
    main_help = timelines("--help", home=tmp_path).stdout
    for panel in ("For applicants", "Data and statistics", "For operators"):
        assert panel in main_help
    applicants = main_help.split("For applicants")[1].split("╰")[0]
    assert "submit" in applicants and "serve" not in applicants


def test_a_known_value_in_another_case_is_accepted(tmp_path: Path) -> None:
    result = timelines("stats", "--office", "nbc", "--form", "i485", home=tmp_path)
    assert "Invalid value" not in result.stderr
    assert "no statistics have been published" in result.stderr


def test_every_command_is_in_a_help_group() -> None:
    import typer

    from timelines.choices import PANELS, apply_choices
    from timelines.cli import app

    group = apply_choices(typer.main.get_command(app))
    grouped = {name for names in PANELS.values() for name in names}
    assert set(group.commands) <= grouped, set(group.commands) - grouped
