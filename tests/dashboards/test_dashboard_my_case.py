"""AppTest of the My case page: explain a pasted or typed case, store nothing, keep no receipt."""

from __future__ import annotations

import json
import logging
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.support.dashboard import APP, publish_sample

PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "payloads"
RECEIPT = "LIN9999106499"


@pytest.fixture(scope="module")
def sample_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with 600 synthetic cases published."""
    home = tmp_path_factory.mktemp("my-case") / "home"
    publish_sample(home)
    return home


@pytest.fixture
def published(sample_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the dashboard at the published sample."""
    monkeypatch.setenv("TIMELINES_HOME", str(sample_home))
    return sample_home


def files_under(home: Path) -> dict[str, float]:
    """Every file under the home with its modification time."""
    return {str(p.relative_to(home)): p.stat().st_mtime for p in home.rglob("*") if p.is_file()}


def my_case_page() -> AppTest:
    """The My case page, opened through the app."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/my_case.py").run()
    assert not at.exception
    return at


def body(name: str) -> object:
    """The answer body of a reference payload."""
    return json.loads((PAYLOADS / name).read_text())["body"]


def said(at: AppTest) -> str:
    """Everything the page says."""
    parts = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.header,
             *at.subheader, *at.success]
    return "\n".join(str(p.value) for p in parts)


def test_pasted_api_answer_is_explained_and_nothing_is_stored(
    published: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = files_under(published)
    caplog.set_level(logging.DEBUG)
    at = my_case_page()
    at.text_area(key="case_paste").input(json.dumps(body("torch_case_status_success_with_history.json")))
    at.button(key="case_paste_go").click().run()
    assert not at.exception
    text = said(at)
    assert "Your case, explained" in text
    assert "Now: Case Was Approved" in text
    assert "Nebraska Service Center" in text
    assert "Your case was decided after **311 days**" in text
    timeline = at.dataframe[0].value
    assert timeline["days since receipt"].iloc[0] == 0
    assert files_under(published) == before, "explaining a case writes nothing"
    assert RECEIPT not in repr(at.session_state["my_case_facts"])
    assert RECEIPT not in caplog.text


def test_myuscis_answers_pasted_together_give_the_current_status(published: Path) -> None:
    at = my_case_page()
    pasted = [body("myuscis_case_detail.json"), body("myuscis_case_status.json")]
    at.text_area(key="case_paste").input(json.dumps(pasted))
    at.button(key="case_paste_go").click().run()
    text = said(at)
    assert "Form I-485" in text
    assert "ELIS" in text
    assert "Is my wait normal?" in text
    assert "What usually comes next" in text


@pytest.mark.parametrize(
    ("pasted", "message"),
    [
        ("this is not json", "we could not recognise this input"),
        ('{"data": null}', "not signed in"),
        ("{", "not valid JSON"),
    ],
)
def test_unreadable_pastes_say_what_to_fix(published: Path, pasted: str, message: str) -> None:
    at = my_case_page()
    at.text_area(key="case_paste").input(pasted)
    at.button(key="case_paste_go").click().run()
    assert not at.exception
    assert message.lower() in said(at).lower()
    assert "Your case, explained" not in said(at)


def test_typed_receipt_lists_the_four_myuscis_addresses(published: Path) -> None:
    at = my_case_page()
    at.text_input(key="case_receipt").input("lin-99-991-06499")
    at.button(key="case_typed_go").click().run()
    links = [url for m in at.markdown for url in re.findall(r"\]\((https://[^)]+)\)", m.value)]
    assert links == [
        f"https://my.uscis.gov/account/case-service/api/cases/{RECEIPT}",
        f"https://my.uscis.gov/account/case-service/api/case_status/{RECEIPT}",
        f"https://my.uscis.gov/account/case-service/api/cases/{RECEIPT}/documents",
        f"https://my.uscis.gov/secure-messaging/api/case-service/receipt_info/{RECEIPT}",
    ]


def test_a_malformed_receipt_is_refused_with_the_expected_format(published: Path) -> None:
    at = my_case_page()
    at.text_input(key="case_receipt").input("ABC123")
    at.button(key="case_typed_go").click().run()
    assert "3 letters and 10 digits" in said(at)
    assert not [m for m in at.markdown if "https://my.uscis.gov" in m.value]


def test_typed_pending_case_gets_chances_with_intervals_and_sample_size(published: Path) -> None:
    at = my_case_page()
    at.selectbox(key="case_form").set_value("I-765")
    at.selectbox(key="case_office").set_value("NBC")
    at.date_input(key="case_received").set_value(date.today() - timedelta(days=60))
    at.selectbox(key="case_stage").set_value("biometrics")
    at.button(key="case_typed_go").click().run()
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    assert set(metrics) == {"Decision within 30 days", "Decision within 60 days",
                            "Decision within 90 days"}
    assert all(m.value.endswith("%") for m in metrics.values())
    assert "95% CI" in str(metrics["Decision within 30 days"].proto.delta)
    assert "Why different n's" in said(at) and "had waited at least 60 days" in said(at)


def test_typed_case_without_a_date_is_refused(published: Path) -> None:
    at = my_case_page()
    at.selectbox(key="case_office").set_value("NBC")
    at.button(key="case_typed_go").click().run()
    assert "enter the receipt date" in said(at)


def test_the_page_works_before_anything_is_published() -> None:
    at = my_case_page()
    at.selectbox(key="case_office").set_value("NSC")
    at.date_input(key="case_received").set_value(date.today() - timedelta(days=30))
    at.button(key="case_typed_go").click().run()
    assert "No statistics are published yet" in said(at)


def test_a_typed_status_without_its_date_is_not_given_an_invented_one(published: Path) -> None:
    at = my_case_page()
    at.selectbox(key="case_office").set_value("NBC")
    at.date_input(key="case_received").set_value(date.today() - timedelta(days=40))
    at.selectbox(key="case_stage").set_value("interview")
    at.button(key="case_typed_go").click().run()
    assert "Now: Interview Was Scheduled" in said(at)
    assert list(at.dataframe[0].value["status"]) == ["Case Was Received"]


def test_a_typed_status_with_its_date_joins_the_timeline(published: Path) -> None:
    received = date.today() - timedelta(days=40)
    at = my_case_page()
    at.selectbox(key="case_office").set_value("NBC")
    at.date_input(key="case_received").set_value(received)
    at.selectbox(key="case_stage").set_value("biometrics")
    at.date_input(key="case_stage_date").set_value(received + timedelta(days=20))
    at.button(key="case_typed_go").click().run()
    timeline = at.dataframe[0].value
    assert list(timeline["days since receipt"]) == [0, 20]


def test_a_status_dated_before_the_receipt_is_refused(published: Path) -> None:
    received = date.today() - timedelta(days=40)
    at = my_case_page()
    at.selectbox(key="case_office").set_value("NBC")
    at.date_input(key="case_received").set_value(received)
    at.selectbox(key="case_stage").set_value("approved")
    at.date_input(key="case_stage_date").set_value(received - timedelta(days=1))
    at.button(key="case_typed_go").click().run()
    assert "is before the receipt date" in said(at)
    assert "Your case, explained" not in said(at)


def linked_page(params: dict[str, str]) -> AppTest:
    """The My case page opened from an answer link."""
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.switch_page("views/my_case.py")
    at.query_params.update(params)
    return at.run()


def test_an_answer_link_opens_the_answer_card_first(published: Path) -> None:
    at = linked_page({"form": "I-485", "office": "NBC", "received": "2025-09-15",
                      "stage": "biometrics"})
    assert not at.exception
    text = said(at)
    assert re.search(r"Your wait is (already longer|shorter) than \d in \d+ similar cases", text) \
        or "Your wait so far is typical" in text
    assert "will likely come between" in text
    assert {m.label for m in at.metric} == {f"Decision within {d} days" for d in (30, 60, 90)}
    assert "Why different n's" in text
    assert "Usually next" in text or "No published stage-to-stage time" in text
    stamp = (published / "published" / "CURRENT").read_text().strip()
    cite = at.code[0].value
    assert "n=" in cite and "95% CI" in cite and stamp.split("/")[-1] in cite
    link = next(m.value for m in at.markdown if "Link to this answer" in m.value)
    assert "received=2025-09-15" in link and "stage=biometrics" in link
    assert not at.expander[0].proto.expanded, "the inputs fold away below the answer"


def test_a_bad_answer_link_says_so(published: Path) -> None:
    at = linked_page({"form": "I-485", "office": "NBC", "received": "15/09/2025"})
    assert not at.exception
    assert "This link does not describe a case we can read" in said(at)
    assert "Your case, explained" not in said(at)
