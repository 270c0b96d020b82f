"""Attack: a formula in a value that reaches an exported CSV.

An official answer whose category is `=HYPERLINK(...)` landed unescaped in
official_comparison.csv, where a spreadsheet runs it. Expected: cells that start with
=, +, -, @ (tab, carriage return) and are not numbers are neutralised with a leading '
(OWASP, CSV injection); numbers such as -3 stay numbers.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pipeline.publish.export import neutralise_cell
from pipeline.settings import Settings
from tests.support.cli import timelines

FORMULA = '=HYPERLINK("http://127.0.0.1:9/x","click")'


def _official_answer(category: str, info: str) -> dict[str, object]:
    figure = [{"value": 7.5, "unit": "Months"}, {"value": 3.0, "unit": "Months"}]
    return {"data": {"processing_time": {
        "form_name": "I-765", "office_code": "NSC", "range": figure,
        "subtypes": [{"form_type": category, "publication_date": "August 17, 2024",
                      "range": figure, "service_request_date": "January 02, 2024",
                      "subtype_info_en": info}],
    }}}


def test_formula_cells_from_an_official_answer_are_neutralised(
    settings: Settings, tmp_path: Path
) -> None:
    answer = tmp_path / "official.json"
    answer.write_text(json.dumps(_official_answer(FORMULA, "@SUM(1+1)*cmd|' /C calc'!A0")))
    done = timelines("import-official", str(answer), home=settings.home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert timelines("export", str(tmp_path / "open"), home=settings.home).returncode == 0
    with (tmp_path / "open" / "official_comparison.csv").open() as handle:
        [row] = list(csv.DictReader(handle))
    assert row["subtype"] == "'" + FORMULA
    assert row["subtype_info"].startswith("'@")
    cells = [c for path in (tmp_path / "open").glob("*.csv")
             for line in csv.reader(path.open()) for c in line]
    assert not [c for c in cells if c and c[0] in "=+@\t\r"]
    assert not [c for c in cells if c.startswith("-") and not _is_number(c)]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_numbers_stay_numbers_and_text_is_untouched() -> None:
    assert neutralise_cell("-3") == "-3" and neutralise_cell("+1.5e3") == "+1.5e3"
    assert neutralise_cell("-cmd") == "'-cmd" and neutralise_cell("I-485") == "I-485"
    assert neutralise_cell(None) is None
