"""My case: paste a history or type dates; a plain-English explanation, nothing stored."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import streamlit as st

from dashboards import data, notices
from dashboards.formatting import TOO_FEW, percent, when
from dashboards.navigation import page_exists
from pipeline.analytics import case_explainer as ce
from pipeline.analytics.estimate import CaseEstimate
from pipeline.parse.forms import COMMON_FORMS
from pipeline.receipts import OFFICE_NAMES, OFFICES, InvalidReceiptError, office_of
from pipeline.stages import GENERIC_TITLES, STAGES

_FACTS = "my_case_facts"  # the CaseFacts being explained (no receipt number in it)
TYPED_STAGES = [s for s in STAGES if s not in {"rejected", "other"}]


def render() -> None:
    """Draw the my-case page."""
    settings = data.app_settings()
    st.title("My case")
    st.markdown(
        "Paste what USCIS shows you, or type your dates, to get a plain-English explanation "
        "and what similar cases suggest about your wait. **Nothing you enter here is stored.**"
    )
    _submit_link()
    snapshot = data.open_snapshot(settings)
    if snapshot:
        notices.synthetic_banner(snapshot)
    durations = data.read_table(snapshot, "durations") if snapshot else None

    paste_tab, typed_tab = st.tabs(["Paste a history", "Type your dates"])
    with paste_tab:
        _paste_input()
    with typed_tab:
        _typed_input(_known_forms(durations))

    facts = st.session_state.get(_FACTS)
    if facts is None:
        return
    k = notices.min_group_size(snapshot, settings) if snapshot else settings.min_group_size
    _explain(facts, durations, k)


def _known_forms(durations: pl.DataFrame | None) -> list[str]:
    if durations is None or durations.height == 0:
        return list(COMMON_FORMS)
    counts = durations.group_by("form_type").agg(pl.len().alias("n")).sort("n", descending=True)
    return counts["form_type"].to_list()


def _paste_input() -> None:
    st.caption(
        "Accepted: the official Case Status API answer; the JSON myUSCIS shows at the addresses "
        "listed under *Type your dates* once you enter your receipt number (one or several "
        "pasted together); the simplified {receiptNumber, events} shape; a CSV of timelines."
    )
    with st.form("paste_form"):
        text = st.text_area("Your case's history", height=180, key="case_paste",
                            placeholder='{"data": {"receiptNumber": ...}}')
        explain = st.form_submit_button("Explain my case", type="primary", key="case_paste_go")
    if not explain:
        return
    reading = ce.read_paste(text or "", datetime.now())
    for problem in reading.problems:
        st.warning(problem, icon=":material/report:")
    for note in reading.notes:
        st.caption(note)
    if not reading.cases:
        st.session_state.pop(_FACTS, None)
        st.error("We could not read a case from this input: the message above says why.",
                 icon=":material/error:")
        return
    if len(reading.cases) > 1:
        st.info(f"This input holds {len(reading.cases)} cases; explaining the first one.")
    st.session_state[_FACTS] = reading.cases[0]


def _typed_input(forms: list[str]) -> None:
    with st.form("typed_form"):
        receipt = st.text_input(
            "Receipt number (optional)", key="case_receipt", placeholder="e.g. IOE0912345678",
            help="Used only to find your office and to list your myUSCIS addresses below. "
                 "It is not stored or logged.",
        )
        cols = st.columns(2)
        form = cols[0].selectbox("Form", forms, key="case_form", accept_new_options=True)
        office = cols[1].selectbox(
            "Office (if no receipt number)", OFFICES, index=None, key="case_office",
            placeholder="from the receipt number", format_func=lambda c: f"{c} – {OFFICE_NAMES[c]}",
        )
        dates = st.columns(3)
        received = dates[0].date_input("Receipt date", value=None, key="case_received",
                                       min_value=date(1990, 1, 1), max_value=date.today())
        stage = dates[1].selectbox("Latest status", TYPED_STAGES, key="case_stage",
                                   format_func=lambda s: s.replace("_", " "))
        stage_date = dates[2].date_input("Date of that status", value=None, key="case_stage_date",
                                         min_value=date(1990, 1, 1), max_value=date.today())
        explain = st.form_submit_button("Explain my case", type="primary", key="case_typed_go")
    addresses_for(receipt)
    if not explain:
        return
    try:
        facts = _typed_facts(receipt, form, office, received, stage, stage_date)
    except (ce.CaseInputError, InvalidReceiptError, ValueError) as error:
        st.session_state.pop(_FACTS, None)
        st.error(str(error), icon=":material/error:")
        return
    st.session_state[_FACTS] = facts


def addresses_for(receipt: str | None) -> None:
    """List the four myUSCIS addresses for a typed receipt number (never stored)."""
    if not receipt or not receipt.strip():
        return
    try:
        addresses = ce.myuscis_addresses(receipt)
    except InvalidReceiptError as error:
        st.error(str(error), icon=":material/error:")
        return
    st.markdown(
        "**Your own data at myUSCIS.** Sign in at my.uscis.gov, then open each address in the "
        "same browser. Each shows a page of JSON: copy all of it and paste it under "
        "*Paste a history*. We never open these for you."
    )
    for label, url in addresses:
        st.markdown(f"- {label}: [{url}]({url})")


def _typed_facts(receipt: str | None, form: object, office: object, received: object,
                 stage: object, stage_date: object) -> ce.CaseFacts:
    from pipeline.parse.fields import normalize_form_type

    if not isinstance(received, date):
        raise ce.CaseInputError("enter the receipt date (on your receipt notice, Form I-797C)")
    form_type = normalize_form_type(form)
    if form_type is None:
        raise ce.CaseInputError("choose or type the form type, e.g. I-485")
    code = (ce.office_from_receipt(receipt) if receipt and receipt.strip()
            else office_of(str(office or "")))
    if code is None:
        raise ce.CaseInputError("choose the office, or type your receipt number")
    if stage == "received" or not isinstance(stage_date, date):
        return ce.facts_from_typed(form_type, code, received, {}, undated_stage=str(stage))
    return ce.facts_from_typed(form_type, code, received, {str(stage): stage_date})


def _explain(facts: ce.CaseFacts, durations: pl.DataFrame | None, k: int) -> None:
    st.divider()
    st.header("Your case, explained")
    today = date.today()
    received = facts.received_date
    lines = [f"**Form {facts.form_type or 'unknown'}**"]
    if received:
        lines.append(f"received {when(received)} ({(today - received).days:,} days ago)")
    st.markdown(", ".join(lines) + ". " + ce.office_sentence(facts))
    stage = facts.stage
    title = (GENERIC_TITLES[stage] if facts.undated_stage
             else facts.events[-1].title if facts.events else "Case Was Received")
    st.subheader(f"Now: {title}")
    st.markdown(ce.STAGE_MEANINGS.get(stage, ce.STAGE_MEANINGS["other"]))
    st.markdown(f"**What usually comes next.** {ce.NEXT_STEPS.get(stage, ce.NEXT_STEPS['other'])}")
    if facts.events:
        st.subheader("Timeline so far")
        st.dataframe(ce.timeline_rows(facts), hide_index=True, width="stretch")
    st.subheader("What similar cases suggest")
    if durations is None:
        st.info("No statistics are published yet, so there is nothing to compare with.")
        return
    if facts.form_type is None or received is None:
        st.info("The form type and the receipt date are needed to compare with other cases.")
        return
    if stage in ce.DECIDED_STAGES and facts.decided_on is None:
        st.info("Enter the date of the decision to compare your wait with similar cases.")
        return
    if stage in ce.CLOSED_STAGES and facts.decided_on is None:
        st.markdown("This case is closed without a decision, so there is no wait to estimate.")
        return
    comparison = ce.compare_wait(durations, facts, today, k)
    if comparison.share_decided_within is None:
        notices.too_few(k, comparison.scope)
        return
    decided = facts.decided_on is not None
    st.markdown(
        f"Your case {'was decided after' if decided else 'has waited'} "
        f"**{comparison.waited_days:,} days**. Of {comparison.n_cases:,} {comparison.scope}, "
        f"**{percent(comparison.share_decided_within)}** were decided within that time (cases "
        "still waiting counted as waiting)."
    )
    if not decided:
        _pending(ce.estimate_wait(durations, facts, today, k), k)


def _pending(estimate: CaseEstimate, k: int) -> None:
    if not estimate.enough_data:
        st.info(
            f"{TOO_FEW.capitalize()} about the rest of your wait: fewer than {k} cases like "
            f"yours were still waiting after {estimate.waited_days:,} days, so there is nothing "
            "to estimate it from.",
            icon=":material/visibility_off:",
        )
        return
    cols = st.columns(max(1, len(estimate.chances)))
    for col, chance in zip(cols, estimate.chances, strict=False):
        value = "not known yet" if chance.probability is None else percent(chance.probability)
        band = (None if chance.ci_low is None or chance.ci_high is None
                else f"95% CI {percent(chance.ci_low)}–{percent(chance.ci_high)}")
        col.metric(f"Decided within {chance.days} more days", value, delta=band,
                   delta_color="off", delta_arrow="off")
    if estimate.median_date is not None:
        span = ""
        if estimate.likely_from is not None:
            later = when(estimate.likely_by) if estimate.likely_by else "later (not known yet)"
            span = f"; the middle half between **{when(estimate.likely_from)}** and **{later}**"
        st.markdown(f"Half of the cases that had waited this long were decided by "
                    f"**{when(estimate.median_date)}**{span}.")
    notes = " ".join(f"{n[0].upper()}{n[1:]}." for n in estimate.notes)
    st.caption(
        f"Based on {estimate.n_cases:,} cases like yours ({estimate.n_pending:,} still pending); "
        f"the figures rest on the {estimate.n_at_risk:,} that had waited at least as long as "
        f"yours. {notes} Not legal advice."
    )


def _submit_link() -> None:
    if page_exists("submit.py"):
        st.page_link("views/submit.py", label="To add your case to the statistics, submit it",
                     icon=":material/upload:")


render()
