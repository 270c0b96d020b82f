"""The submit and delete pages, run as Streamlit runs them (AppTest), on their own."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from streamlit.testing.v1 import AppTest

from pipeline.inbox.folder import lookup_status, pending_files
from pipeline.jobs.inbox import process_inbox
from pipeline.settings import Settings
from tests.support.submission_inputs import APPLICANT, all_kinds, api_answer

VIEWS = Path(__file__).resolve().parents[2] / "dashboards" / "views"


def submit_page() -> AppTest:
    return AppTest.from_file(str(VIEWS / "submit.py"), default_timeout=60).run()


def paste_and_preview(at: AppTest, text: str) -> AppTest:
    at.text_area(key="submit_paste_text").input(text)
    return at.button(key="submit_paste_preview").click().run()


def consent_and_submit(at: AppTest) -> str:
    at.checkbox(key="submit_consent").check().run()
    at.button(key="submit_send").click().run()
    assert not at.exception
    [code] = [c.value for c in at.code]
    return str(code)


def test_paste_preview_consent_submit_shows_the_code_once(settings: Settings) -> None:
    at = paste_and_preview(submit_page(), "\n".join(all_kinds()["myuscis"].splitlines()))
    assert not at.exception and not at.error
    cases = at.dataframe[0].value
    # plain column names, no raw field names and no "None"
    assert cases["form"].to_list() == ["I-485"] and cases["office that has it now"].to_list() == ["NSC"]
    assert not {"pseudonym", "intake_office", "current_office"} & set(cases.columns)
    assert "None" not in json.dumps(cases.astype(str).values.tolist())
    assert APPLICANT not in json.dumps([str(x.value) for x in at.dataframe])
    assert pending_files(settings.inbox_dir) == []  # a preview writes nothing
    assert at.button(key="submit_send").disabled  # not before consent

    code = consent_and_submit(at)
    assert code.startswith("TL-") and lookup_status(settings.inbox_dir, code).state == "waiting"
    at.button(key="submit_code_saved").click().run()
    assert not at.code  # shown once: gone once the submitter says it is saved
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, code).state == "received"


def test_a_csv_pasted_in_the_box_is_recognised(settings: Settings) -> None:
    at = paste_and_preview(submit_page(), all_kinds()["csv_import"])
    assert at.dataframe[0].value["case"].to_list() == ["row 2", "row 3"]
    code = consent_and_submit(at)
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, code).n_stored == 2


def test_the_typed_form_submits_a_timeline(settings: Settings) -> None:
    at = submit_page()
    at.selectbox(key="submit_form").select("I-765")
    at.selectbox(key="submit_office").select("NBC")
    at.date_input(key="submit_received").set_value(date(2024, 1, 5))
    at.date_input(key="submit_approved_date").set_value(date(2024, 4, 2))
    at.button(key="submit_typed_preview").click().run()
    events = at.dataframe[1].value
    assert events["step"].to_list() == ["received", "approved"]
    code = consent_and_submit(at)
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, code).state == "received"


def test_bad_input_shows_what_to_fix_and_offers_no_submit(settings: Settings) -> None:
    at = paste_and_preview(submit_page(), '{"case_status": ')
    assert any("this is not valid JSON" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "submit_send"]


def test_a_sheet_with_a_bad_row_can_submit_only_the_good_rows(settings: Settings) -> None:
    text = ("form_type,office,received_date,approved_date\n"
            "I-765,NSC,2024-01-05,2024-03-01\nI-765,NSC,2024-03-05,2024-01-01\n")
    at = paste_and_preview(submit_page(), text)
    assert any("row 3" in e.value for e in at.error)
    at.checkbox(key="submit_consent").check().run()
    assert at.button(key="submit_send").disabled
    at.checkbox(key="submit_skip_invalid").check().run()
    at.button(key="submit_send").click().run()
    [code] = [c.value for c in at.code]
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, str(code)).state == "received"


def delete_page() -> AppTest:
    return AppTest.from_file(str(VIEWS / "delete.py"), default_timeout=60).run()


def test_delete_page_looks_up_and_deletes(settings: Settings) -> None:
    code = consent_and_submit(paste_and_preview(submit_page(), json.dumps(api_answer())))
    process_inbox(settings)

    at = delete_page()
    at.text_input(key="delete_code").input(code.lower().replace("-", " "))
    at.button(key="delete_lookup").click().run()
    assert any("processed" in i.value and "taken in" in i.value for i in at.info)
    assert at.button(key="delete_send").disabled  # not before confirming
    at.checkbox(key="delete_confirm").check().run()
    at.button(key="delete_send").click().run()
    assert any("deletion requested" in i.value for i in at.info)
    process_inbox(settings)
    assert lookup_status(settings.inbox_dir, code).state == "deleted"


def test_delete_page_explains_a_wrong_code(settings: Settings) -> None:
    at = delete_page()
    at.text_input(key="delete_code").input("EAC2190000001")
    at.button(key="delete_lookup").click().run()
    assert any("this is not a deletion code" in e.value for e in at.error)
    at.text_input(key="delete_code").input("TL-0000-0000-0000-0000-0000")
    at.button(key="delete_lookup").click().run()
    assert any("no submission has this deletion code" in e.value for e in at.error)


def test_submit_and_delete_carry_the_synthetic_banner_and_delete_asks_first(
    settings: Settings,
) -> None:
    from tests.support.dashboard import publish_sample

    publish_sample(settings.home, n_cases=60)
    submit = submit_page()
    assert any("Synthetic sample data" in w.value for w in submit.warning)
    delete = AppTest.from_file(str(VIEWS / "delete.py"), default_timeout=60).run()
    assert any("Synthetic sample data" in w.value for w in delete.warning)
    assert delete.button(key="delete_send").disabled
    # the confirmation box comes before the button it unlocks
    order = [getattr(e, "key", None) for e in delete.main]
    assert order.index("delete_confirm") < order.index("delete_send")
