"""Submit a history: paste, type or upload; see exactly what would be stored; consent; get a
one-time deletion code. Writes only to the inbox folder, never to the database."""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime
from pathlib import Path

import streamlit as st

from dashboards import data, notices
from dashboards.formatting import plain, plain_rows
from pipeline.inbox.consent import CONSENT_TEXT, CONSENT_VERSION, give_consent
from pipeline.inbox.folder import SubmissionRefused, write_submission
from pipeline.inbox.limits import admit, client_address
from pipeline.parse.forms import COMMON_FORMS
from pipeline.prepare.anonymize import key_of
from pipeline.prepare.preview import (
    MAX_CSV_BYTES,
    MAX_PASTE_BYTES,
    NotUtf8Error,
    SubmissionPreview,
    decode_submission,
    preview_submission,
)
from pipeline.receipts import OFFICE_NAMES, OFFICES
from pipeline.settings import Settings, load_settings

_INPUT = "submit_input"  # (text, kind) being previewed
_CODE = "submit_code"  # the deletion code, shown until the submitter says it is saved
_SESSION = "submit_session"  # a random id of this browser session, for the per-session limit
_REFUSED = "submit_input_refused"  # why the given input was not even read (size, encoding)
TEMPLATE = Path(__file__).resolve().parents[2] / "docs" / "templates" / "community-timelines-template.csv"
MILESTONE_INPUTS = (
    ("biometrics_date", "Biometrics"), ("interview_date", "Interview"), ("rfe_date", "RFE sent"),
    ("rfe_response_date", "RFE response received"), ("transferred_date", "Transferred"),
    ("approved_date", "Approved"), ("denied_date", "Denied"),
    ("card_produced_date", "Card produced"), ("card_mailed_date", "Card mailed"),
    ("withdrawn_date", "Withdrawn"),
)


def render() -> None:
    """Draw the submit page."""
    st.title("Submit your case history")
    _banner()
    if st.session_state.get(_CODE):
        _show_code(st.session_state[_CODE])
        return
    st.markdown(
        "Add your case to the community statistics. You will see **exactly the rows that would "
        "be stored** before anything is kept. Your receipt number is replaced by a keyed "
        "pseudonym; names, A-numbers, addresses, e-mails and free text are never stored."
    )
    paste_tab, typed_tab, csv_tab = st.tabs(["Paste JSON", "Type a timeline", "Upload a CSV"])
    with paste_tab:
        _paste_input()
    with typed_tab:
        _typed_input()
    with csv_tab:
        _csv_input()
    refused = st.session_state.get(_REFUSED)
    if refused:
        st.error(plain(refused), icon=":material/error:")
        return
    given = st.session_state.get(_INPUT)
    if given is None:
        return
    try:
        settings = load_settings()
        settings.ensure_home()
        key = key_of(settings)
    except (ValueError, OSError):
        st.error("Submissions are not possible right now; please try again later.",
                 icon=":material/error:")
        return
    preview = preview_submission(given[0], given[1], key=key, now=datetime.now(),
                                 max_cases=settings.limits.max_cases)
    _show_preview(preview)
    if preview.records:
        _consent_and_submit(preview, settings)


def _banner() -> None:
    """The synthetic-data banner, as on every page, when the published figures are synthetic."""
    try:
        snapshot = data.open_snapshot(data.app_settings())
    except (ValueError, data.SnapshotGoneError):
        return
    if snapshot is not None:
        notices.synthetic_banner(snapshot)


def _paste_input() -> None:
    st.caption(
        "Accepted: the official Case Status API answer; myUSCIS JSON from cases/<receipt>, "
        "case_status/<receipt>, cases/<receipt>/documents or receipt_info/<receipt> (one or "
        f"several pasted together); the simplified {{receiptNumber, events}} shape. Limit "
        f"{MAX_PASTE_BYTES // 1_000_000} MB."
    )
    with st.form("submit_paste_form"):
        text = st.text_area("Your case's JSON", height=200, key="submit_paste_text",
                            placeholder='{"data": {"receiptNumber": ...}}',
                            max_chars=MAX_PASTE_BYTES)
        if st.form_submit_button("Preview what would be stored", type="primary",
                                 key="submit_paste_preview"):
            _given(text or "", None, MAX_PASTE_BYTES)


def _typed_input() -> None:
    today = date.today()
    with st.form("submit_typed_form"):
        receipt = st.text_input(
            "Receipt number (optional)", key="submit_receipt", placeholder="e.g. IOE0912345678",
            help="Only a keyed pseudonym of it is stored. With it, your case merges with the same "
                 "case submitted again or polled; without it, the office below is needed.",
        )
        cols = st.columns(3)
        form = cols[0].selectbox("Form", COMMON_FORMS, key="submit_form", accept_new_options=True)
        office = cols[1].selectbox("Office on the receipt notice", OFFICES, index=None,
                                   key="submit_office", placeholder="from the receipt number",
                                   format_func=lambda c: f"{c} – {OFFICE_NAMES[c]}")
        current = cols[2].selectbox("Office now (if transferred)", OFFICES, index=None,
                                    key="submit_current_office", placeholder="same")
        received = st.date_input("Received date (on the receipt notice)", value=None,
                                 key="submit_received", min_value=date(1990, 1, 1), max_value=today)
        premium = st.checkbox("Premium processing", key="submit_premium")
        dates: dict[str, object] = {}
        cols = st.columns(5)
        for index, (name, label) in enumerate(MILESTONE_INPUTS):
            dates[name] = cols[index % 5].date_input(label, value=None, key=f"submit_{name}",
                                                     min_value=date(1990, 1, 1), max_value=today)
        if st.form_submit_button("Preview what would be stored", type="primary",
                                 key="submit_typed_preview"):
            fields = {"kind": "typed_form", "receipt_number": receipt or None, "form_type": form,
                      "office": office, "current_office": current,
                      "premium": True if premium else None, "received_date": received, **dates}
            text = json.dumps({k: v for k, v in fields.items() if v is not None}, default=str)
            _given(text, "typed_form", MAX_PASTE_BYTES)


def _csv_input() -> None:
    st.caption(
        "One row per case, a header row naming the columns (form_type, office, received_date, "
        "biometrics_date, approved_date, ...). Dates as 2024-05-29 or 5/29/2024; leave a cell "
        f"empty (or '.', '-', 'n/a') when there is no date. Limit {MAX_CSV_BYTES // 1_000_000} MB."
    )
    if TEMPLATE.is_file():
        st.download_button("Download the CSV template", TEMPLATE.read_bytes(),
                           file_name=TEMPLATE.name, mime="text/csv", key="submit_template")
    with st.form("submit_csv_form"):
        upload = st.file_uploader("Spreadsheet saved as CSV", type=["csv", "txt"], key="submit_csv")
        if st.form_submit_button("Preview what would be stored", type="primary",
                                 key="submit_csv_preview") and upload is not None:
            if upload.size > MAX_CSV_BYTES:
                _refuse(f"the file is {upload.size / 1e6:.1f} MB; the limit is "
                        f"{MAX_CSV_BYTES // 1_000_000} MB. A submission is a few of your own "
                        "cases: keep only their rows")
                return
            try:
                text = decode_submission(upload.getvalue())
            except NotUtf8Error as error:
                _refuse(str(error))
                return
            _given(text, "csv", MAX_CSV_BYTES)


def _refuse(message: str) -> None:
    """Forget the input and say why it was not read."""
    st.session_state.pop(_INPUT, None)
    st.session_state[_REFUSED] = message


def _given(text: str, kind: str | None, limit: int) -> None:
    """Take an input for preview, unless it is over the size limit of its kind."""
    size = len(text.encode("utf-8", errors="replace"))
    if size >= limit:
        _refuse(f"the input is {size / 1e6:.1f} MB, at or over the limit of "
                f"{limit / 1e6:.0f} MB, so it may be cut off and was not read. A case history "
                "is a few kilobytes: paste only the JSON of your own case")
        return
    if "\x00" in text or "\ufffd" in text:
        _refuse("the input holds bytes that are not text (it is not UTF-8): copy the text "
                "again, or save the file as UTF-8")
        return
    st.session_state.pop(_REFUSED, None)
    st.session_state[_INPUT] = (text, kind)


def _show_preview(preview: SubmissionPreview) -> None:
    st.divider()
    st.header("What would be stored")
    for error in preview.errors:
        st.error(plain(error), icon=":material/error:")
    if preview.records:
        st.dataframe(plain_rows(preview.case_rows()), hide_index=True, width="stretch",
                     key="submit_cases")
        st.caption("Dated steps:")
        st.dataframe(plain_rows(preview.event_rows()), hide_index=True, width="stretch",
                     key="submit_events")
    for note in preview.notes:
        st.info(plain(note), icon=":material/info:")


def _client() -> tuple[str, str | None, str | None]:
    """This browser session's random id, the connecting peer and its X-Forwarded-For."""
    session = st.session_state.setdefault(_SESSION, secrets.token_hex(16))
    try:
        peer = st.context.ip_address
        forwarded = st.context.headers.get("X-Forwarded-For")
    except (AttributeError, RuntimeError):
        peer, forwarded = None, None
    return str(session), peer, forwarded


def _consent_and_submit(preview: SubmissionPreview, settings: Settings) -> None:
    inbox_dir = settings.inbox_dir
    st.subheader("Consent")
    st.markdown(f"> {CONSENT_TEXT}")
    agreed = st.checkbox(f"I agree (consent version {CONSENT_VERSION})", key="submit_consent")
    skip = False
    if preview.errors:
        skip = st.checkbox(
            f"Submit only the {len(preview.records)} valid case(s); set the others aside with "
            "their reasons", key="submit_skip_invalid")
    if st.button("Submit", type="primary", disabled=not agreed or (bool(preview.errors) and not skip),
                 key="submit_send"):
        now = datetime.now()
        session, peer, forwarded = _client()
        address = client_address(peer, forwarded, settings.limits.trusted_proxies)
        try:
            admission = admit(inbox_dir, settings.limits, session=session, address=address, now=now)
        except OSError:
            st.error("Nothing was submitted: submissions are not possible right now.",
                     icon=":material/error:")
            return
        if not admission.allowed:
            st.error(plain(f"Nothing was submitted: {admission.message}"), icon=":material/error:")
            return
        try:
            submitted = write_submission(inbox_dir, preview, give_consent(now), now=now,
                                         skip_invalid=skip, hold=admission.held_for_review)
        except SubmissionRefused as error:
            st.error(plain(f"Nothing was submitted: {error}"), icon=":material/error:")
            return
        except OSError:
            st.error("Nothing was submitted: submissions are not possible right now.",
                     icon=":material/error:")
            return
        st.session_state.pop(_INPUT, None)
        st.session_state[_CODE] = submitted.code
        st.rerun()


def _show_code(code: str) -> None:
    st.success("Thank you: your submission is safely queued. It is counted at the next inbox "
               "run: every 5 minutes where `timelines serve` runs the schedules, every minute in "
               "`timelines demo`; an operator can also run `timelines ingest --inbox` at any time.",
               icon=":material/check_circle:")
    st.markdown("**Your deletion code** (shown only now, we keep only a hash of it):")
    st.code(code, language=None)
    st.markdown(
        "Keep it: it is the only way to delete this submission or to see what happened to it "
        "(on the *Delete a submission* page, or `timelines submission-status CODE`)."
    )
    if st.button("I have saved my code", key="submit_code_saved"):
        st.session_state.pop(_CODE, None)
        st.rerun()


render()
