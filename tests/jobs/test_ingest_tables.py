"""`timelines ingest` on CSV and TSV files: the operator path for community spreadsheets.

Every row is accounted for (stored, quarantined, refused), --as-of censors a historical file
at its date, --columns maps another tracker's headers, and the raw values people type load.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from pipeline.jobs import ingest as ingest_job
from pipeline.settings import Settings
from pipeline.sources.files import InputError
from pipeline.store.db import connect
from tests.support.cli import timelines

# A 2014 spreadsheet as people keep them: office names and cities, m/d/yy, '.' and '-' for
# empty, regular/premium, a category column, a trailing comma typed into a form cell, a
# pending row, a row with an unknown category, one with a field office, a blank row.
SHEET = (
    "User,Form,Service Center,Category,Processing,Priority Date,RD,Approved,Denied,Notes\r\n"
    "alice,I-140,Nebraska Service Center,EB2,regular,1/3/13,1/10/13,6/1/13,.,x@y.org\r\n"
    "bob,\"I-140,\",Dallas,EB-2,premium,2/1/13,2/11/13,2/20/13,-,\r\n"
    "carol,I-140,Texas,E21,Regular,.,3/4/13,.,N/A,\r\n"
    "dan,I-140,NSC,EB9,regular,.,3/5/13,.,.,\r\n"
    ",,,,,,,,,\r\n"
    "erin,I-140,Chicago Field Office,NIW,regular,.,3/6/13,.,.,\r\n"
    "fay,I-140,lin,E11,PP,.,2013-03-07,3/20/2013,.,\r\n"
)


def stored(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    con = connect(settings.database_path, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_community_spreadsheet_loads_through_the_cli_with_every_row_accounted_for(tmp_path: Path) -> None:
    sheet = tmp_path / "i140-timelines.csv"
    sheet.write_bytes(SHEET.encode())
    home = tmp_path / "home"
    done = timelines("ingest", str(sheet), "--as-of", "2014-06-30", "--format", "json",
                     "--columns", "Priority Date=ignore,RD=received_date", home=home)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    rows = summary["table_rows"]
    assert rows == {"read": 6, "stored": 4, "quarantined": 0, "refused": 2, "blank": 1}
    assert rows["read"] == rows["stored"] + rows["quarantined"] + rows["refused"]
    reasons = " ".join(r for rejection in summary["rejections"] for r in rejection["reasons"])
    assert "not a category we know for I-140" in reasons and "field office" in reasons
    settings = Settings(home=home)
    cases = stored(settings, "SELECT intake_office, category, processing, received_date, last_checked"
                             " FROM cases ORDER BY received_date")
    assert cases == [
        ("NSC", "E21", "regular", date(2013, 1, 10), date(2014, 6, 30)),
        ("TSC", "E21", "premium", date(2013, 2, 11), date(2014, 6, 30)),
        ("TSC", "E21", "regular", date(2013, 3, 4), date(2014, 6, 30)),   # pending: censored at --as-of
        ("NSC", "E11", "premium", date(2013, 3, 7), date(2014, 6, 30)),
    ]
    # names, e-mails and notes are never read into anything stored
    dump = json.dumps(stored(settings, "SELECT * FROM cases"), default=str)
    assert "alice" not in dump and "x@y.org" not in dump


def test_a_rows_own_last_checked_wins_over_as_of(tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("form,office,received,last checked\nI-765,NBC,1/5/14,3/1/14\nI-765,NBC,1/6/14,\n")
    settings = Settings(home=tmp_path / "home")
    ingest_job.ingest_files(settings, [sheet], as_of=date(2014, 12, 31))
    assert stored(settings, "SELECT received_date, last_checked FROM cases ORDER BY 1") == [
        (date(2014, 1, 5), date(2014, 3, 1)), (date(2014, 1, 6), date(2014, 12, 31))]


def test_a_folder_of_csv_and_tsv_with_any_line_endings_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_bytes(b"\xef\xbb\xbfform_type;office;received_date\rI-485;NBC;5/29/24\r")
    (folder / "nested" / "b.tsv").write_bytes(b"Form\tCenter\tReceipt Date\tBio\r\nI-765\tNBC\t2024-01-05\t2/1/24\r\n")
    (folder / "c.csv").write_bytes(b"Name,Notes\nJane,hello\n")  # no usable header
    settings = Settings(home=tmp_path / "home")
    result = ingest_job.ingest(settings, [folder])
    assert (result.rows_stored, result.rows_refused) == (2, 1)
    assert result.rows_read == result.rows_stored + result.rows_quarantined + result.rows_refused
    assert any("has no form type" in r for rejection in result.rejections for r in rejection.reasons)


def test_a_folder_without_inputs_is_an_error_not_an_empty_success(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("nothing here")
    with pytest.raises(InputError, match="no input files"):
        ingest_job.discover_inputs([tmp_path / "empty"])
    done = timelines("ingest", str(tmp_path / "empty"), home=tmp_path / "home")
    assert done.returncode != 0 and "no input files" in done.stderr


def test_as_of_in_the_future_and_bad_columns_are_refused_in_words(tmp_path: Path) -> None:
    sheet = tmp_path / "s.csv"
    sheet.write_text("form,office,received\nI-765,NBC,1/5/14\n")
    future = timelines("ingest", str(sheet), "--as-of", "2999-01-01", home=tmp_path / "home")
    assert future.returncode != 0 and "in the future" in future.stderr
    bad = timelines("ingest", str(sheet), "--columns", "Filed=when", home=tmp_path / "home")
    assert bad.returncode != 0 and "not one of our columns" in bad.stderr


def test_rows_are_accounted_for_across_chunks_and_identical_rows_stay_two_cases(tmp_path: Path) -> None:
    lines = ["form_type,office,received_date,approved_date,case_ref"]
    for i in range(2_500):
        day = 1 + i % 28
        if i % 500 == 7:
            lines.append(f"I-765,NBC,2/{day}/24,1/1/24,")  # approved before receipt: quarantined
        elif i % 500 == 9:
            lines.append("I-765,NOWHERE,2/1/24,,")  # refused: unknown office
        elif i % 2:
            lines.append(f"I-765,NBC,2/{day}/24,5/{day}/24,")  # identical rows recur
        else:
            lines.append(f"I-765,NBC,2/{day}/24,,ref-{i % 56}")  # a ref recurs: one case
    sheet = tmp_path / "big.csv"
    sheet.write_text("\n".join(lines) + "\n")
    settings = Settings(home=tmp_path / "home")
    first = ingest_job.ingest_files(settings, [sheet], chunk_size=300, as_of=date(2024, 6, 1))
    assert first.rows_read == 2_500
    assert (first.rows_quarantined, first.rows_refused) == (5, 5)
    assert first.rows_stored == 2_490
    n_cases = stored(settings, "SELECT count(*) FROM cases")[0][0]
    assert n_cases == 1_240 + 28  # each identical odd row its own case; 28 refs, one case each
    again = ingest_job.ingest_files(settings, [sheet], chunk_size=700, as_of=date(2024, 6, 1))
    assert again.n_new_cases == 0 and again.rows_stored == 2_490  # idempotent, whatever the chunking
