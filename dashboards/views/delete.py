"""Delete a submission, or look up what happened to it, with its deletion code.

The request goes into the inbox folder (the dashboard never opens the database); the inbox
flow removes the submission and everything derived from it and re-publishes the figures."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboards import data, notices
from dashboards.formatting import plain
from pipeline.inbox.codes import InvalidCodeError
from pipeline.inbox.folder import (
    SubmissionStatus,
    UnknownCodeError,
    lookup_status,
    request_deletion,
)
from pipeline.settings import load_settings


def render() -> None:
    """Draw the delete page."""
    st.title("Delete a submission")
    try:
        snapshot = data.open_snapshot(data.app_settings())
    except (ValueError, data.SnapshotGoneError):
        snapshot = None
    if snapshot is not None:
        notices.synthetic_banner(snapshot)
    st.markdown(
        "Enter the deletion code you were shown when you submitted. You can look up what "
        "happened to your submission, or delete it: it is then "
        "removed from the database and from the published statistics."
    )
    inbox_dir = load_settings().inbox_dir
    code = st.text_input("Deletion code", key="delete_code", placeholder="TL-XXXX-XXXX-XXXX-XXXX-XXXX")
    look = st.button("Look it up", key="delete_lookup")
    # the confirmation comes first, then the button it unlocks
    confirm = st.checkbox("Yes, delete this submission and everything derived from it",
                          key="delete_confirm")
    delete = st.button("Delete", type="primary", key="delete_send", disabled=not confirm)
    if not code.strip() or not (look or delete):
        return
    try:
        status = (request_deletion(inbox_dir, code, datetime.now()) if delete
                  else lookup_status(inbox_dir, code))
    except (InvalidCodeError, UnknownCodeError) as error:
        st.error(plain(error), icon=":material/error:")
        return
    _show(status)


def _show(status: SubmissionStatus) -> None:
    icon = ":material/delete:" if status.state in {"deleted", "deletion_requested"} else ":material/info:"
    st.info(plain(status.describe()), icon=icon)
    if status.state == "deletion_requested":
        st.markdown("The next inbox run (every few minutes) removes it and re-publishes the figures.")
    for reason in status.reasons:
        st.warning(plain(reason), icon=":material/report:")


render()
