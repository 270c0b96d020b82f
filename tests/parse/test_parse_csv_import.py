"""A community spreadsheet as CSV: the documented template and the usual mess."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.parse.csv_import import looks_like_csv, parse_csv
from pipeline.parse.errors import ParseError

TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "templates" / "community-timelines-template.csv"


def test_the_documented_template_reads_cleanly() -> None:
    rows = parse_csv(TEMPLATE.read_text())
    assert not rows.errors and not rows.ignored
    assert [(t.label, t.form_type, t.intake_office) for t in rows.timelines] == [
        ("row 2", "I-765", "NBC"), ("row 3", "I-485", "NSC")]
    assert rows.timelines[0].observed_at is not None  # last_checked dates the observation


MESSY = (
    "\ufeffName; Form ;Service Center; Receipt Date ;Bio;Approval;Notes\r"
    "Jane Roe; I-765 ; nbc ;1/5/24; 2/1/24 ;-;call me at jane@example.com\r"
    ";;;;;;\r"
    "  ;I485;LIN; 03/15/2024 ;.;n/a;\r"
)


def test_spreadsheet_mess_is_tolerated_and_unknown_columns_are_not_read() -> None:
    assert looks_like_csv(MESSY)
    rows = parse_csv(MESSY)
    assert not rows.errors
    assert rows.ignored == ["Name", "Notes"]
    first, second = rows.timelines
    assert (first.form_type, first.intake_office, first.received_date) == ("I-765", "NBC", date(2024, 1, 5))
    assert [e.stage for e in first.events] == ["received", "biometrics"]
    assert (second.label, second.form_type, second.intake_office) == ("row 4", "I-485", "NSC")
    assert "jane" not in repr(rows.timelines).lower()


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
def test_line_endings(ending: str) -> None:
    text = ending.join(["form_type,office,received_date", "I-765,NSC,2024-01-05", ""])
    assert len(parse_csv(text).timelines) == 1


def test_tab_separated_and_quoted_cells() -> None:
    rows = parse_csv('form_type\toffice\treceived_date\n"I-765"\t"Texas Service Center"\t"2024-01-05"\n')
    assert rows.timelines[0].intake_office == "TSC"


def test_bad_rows_are_listed_by_spreadsheet_row_and_good_rows_still_read() -> None:
    rows = parse_csv("form_type,office,received_date,approved_date\n"
                     "I-765,NSC,2024-01-05,2024-03-01\n"
                     "I-765,,2024-01-05,\n"
                     "I-765,NSC,13/01/2024,\n")
    assert len(rows.timelines) == 1
    assert rows.errors[0].startswith("row 3: the office is missing")
    assert rows.errors[1].startswith("row 4: received date '13/01/2024' looks like day/month/year")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty"),
        ("name,notes\nJane,hello\n", "no form type and no received date column"),
        ("I-765,NSC,1/5/2024\n", "the first row looks like data"),
        ("form_type,office,received_date\n\n", "no rows of cases"),
    ],
)
def test_files_that_cannot_be_read_say_why(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_csv(text)
