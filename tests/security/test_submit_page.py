"""Attacks on the Submit page (AppTest, as Streamlit runs it).

- A CSV cell `![](http://host/x)` was shown as an image in an error (the host got a request);
  `<svg/onload=...>` passed the input filter. Expected: every message that may quote input is
  plain text; script-bearing input is refused.
- Nothing limited submissions. Expected: per browser session and per client address limits,
  then a global hourly cap past which submissions wait for an operator's review.
- A 30 MB paste closed the page's connection with no message. Expected: a clear message.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from pipeline.inbox.folder import lookup_status, pending_files, review_files
from pipeline.inbox.limits import client_address
from pipeline.prepare.preview import MAX_PASTE_BYTES
from pipeline.settings import Settings
from tests.support.cli import timelines

VIEWS = Path(__file__).resolve().parents[2] / "dashboards" / "views"
TIMELINE = "form_type,office,received_date,approved_date\nI-765,NSC,2024-01-05,2024-03-01\n"


def page() -> AppTest:
    return AppTest.from_file(str(VIEWS / "submit.py"), default_timeout=60).run()


def preview(at: AppTest, text: str) -> AppTest:
    at.text_area(key="submit_paste_text").input(text)
    return at.button(key="submit_paste_preview").click().run()


def send(at: AppTest) -> AppTest:
    at.checkbox(key="submit_consent").check().run()
    return at.button(key="submit_send").click().run()


def rendered(at: AppTest) -> str:
    """The HTML Streamlit's Markdown would make of every alert on the page."""
    md = MarkdownIt("commonmark")
    return "\n".join(md.render(str(e.value)) for e in [*at.error, *at.info, *at.warning])


def test_a_markdown_image_in_a_csv_cell_is_shown_as_text(settings: Settings) -> None:
    at = preview(page(), "form_type,office,received_date\n![](http://127.0.0.1:9/x),NSC,2024-01-05\n")
    assert not at.exception and at.error
    html = rendered(at)
    assert "<img" not in html and "<a " not in html
    assert "![](http://127.0.0.1" in html  # shown as the characters typed


@pytest.mark.parametrize("payload", ["<svg/onload=alert(1)>", "<img src=x onerror=alert(1)>",
                                     '{"a": "<iframe src=//x>"}'])
def test_script_bearing_input_is_refused(settings: Settings, payload: str) -> None:
    at = preview(page(), payload)
    assert any("script" in str(e.value) for e in at.error), [e.value for e in at.error]
    assert "<svg" not in rendered(at) and "<img" not in rendered(at)
    assert not [b for b in at.button if b.key == "submit_send"]


def test_a_paste_at_the_size_limit_gets_a_clear_message(settings: Settings) -> None:
    at = preview(page(), "{" + "x" * (MAX_PASTE_BYTES - 1))
    assert not at.exception
    assert any("limit" in str(e.value) and "MB" in str(e.value) for e in at.error)
    assert pending_files(settings.inbox_dir) == []


def test_one_browser_session_is_limited(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMELINES_SUBMIT_PER_SESSION", "2")
    at = page()
    for _ in range(2):
        at = send(preview(at, TIMELINE))
        assert at.code, [e.value for e in at.error]
        at.button(key="submit_code_saved").click().run()
    at = send(preview(at, TIMELINE))
    assert not at.code and any("this browser has submitted 2 times" in str(e.value).replace("\\", "")
                               for e in at.error)
    assert len(pending_files(settings.inbox_dir)) == 2


def test_one_client_address_is_limited_across_sessions(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMELINES_SUBMIT_PER_ADDRESS", "2")
    for _ in range(2):
        assert send(preview(page(), TIMELINE)).code
    refused = send(preview(page(), TIMELINE))
    assert not refused.code and any("from your network" in str(e.value) for e in refused.error)


def test_past_the_hourly_cap_submissions_wait_for_review(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMELINES_SUBMIT_GLOBAL_PER_HOUR", "1")
    send(preview(page(), TIMELINE))
    held = send(preview(page(), TIMELINE))
    [code] = [str(c.value) for c in held.code]
    assert lookup_status(settings.inbox_dir, code).state == "held_for_review"
    assert len(pending_files(settings.inbox_dir)) == 1 and len(review_files(settings.inbox_dir)) == 1
    listed = timelines("review", home=settings.home)
    [submission] = [line.split()[0] for line in listed.stdout.splitlines() if line.startswith("s_")]
    assert timelines("review", "--approve", submission, home=settings.home).returncode == 0
    assert len(pending_files(settings.inbox_dir)) == 2
    assert lookup_status(settings.inbox_dir, code).state == "waiting"


def test_a_forwarded_address_is_honoured_only_from_a_trusted_proxy() -> None:
    spoofed = "203.0.113.9"
    assert client_address("198.51.100.7", spoofed, ()) == "198.51.100.7"
    assert client_address("198.51.100.7", spoofed, ("10.0.0.2",)) == "198.51.100.7"
    assert client_address("10.0.0.2", f"{spoofed}, 192.0.2.44", ("10.0.0.2",)) == "192.0.2.44"
    assert client_address("10.0.0.2", "not-an-ip", ("10.0.0.2",)) == "10.0.0.2"
