"""My case: paste a history or type dates; a plain-English explanation, nothing stored."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl
import streamlit as st

from dashboards import data, notices
from dashboards.case_card import show_card
from dashboards.formatting import percent, when
from dashboards.navigation import page_exists
from dashboards.tables import show_table
from pipeline.analytics import case_explainer as ce
from pipeline.analytics.answer_card import answer_card
from pipeline.parse.forms import COMMON_FORMS
from pipeline.publish.reader import Snapshot
from pipeline.receipts import OFFICE_NAMES, OFFICES, InvalidReceiptError, office_of
from pipeline.stages import GENERIC_TITLES, STAGES

_FACTS = "my_case_facts"  # the CaseFacts being explained (no receipt number in it)
TYPED_STAGES = [s for s in STAGES if s not in {"rejected", "other"}]


def render() -> None:
    """Draw the my-case page."""
    settings = data.app_settings()
    st.title("My case")
    shown = st.session_state.get(_FACTS) is not None or "received" in st.query_params
    st.markdown(
        "**Nothing you enter here is stored.**" if shown else
        "Type your dates, or paste what USCIS shows you, to learn whether your wait is normal "
        "and when you will likely hear. **Nothing you enter here is stored.**"
    )
    snapshot = data.open_snapshot(settings)
    if snapshot:
        notices.synthetic_banner(snapshot)
    durations = data.read_table(snapshot, "durations") if snapshot else None

    # the answer first (filled in below, once the inputs are read), then the inputs: on a
    # phone the answer is the first screen, and the typed form comes before the paste box
    answer = st.container()
    with st.expander("Change the case" if shown else "Your case", expanded=not shown):
        typed_tab, paste_tab = st.tabs(["Type your dates", "Paste a history"])
        with typed_tab:
            _typed_input(_known_forms(durations))
        with paste_tab:
            _paste_input()
    _submit_link()

    with answer:
        facts = st.session_state.get(_FACTS) or _linked_facts()
        if facts is None:
            return
        k = notices.min_group_size(snapshot, settings) if snapshot else settings.min_group_size
        _explain(facts, durations, k, snapshot)


def _linked_facts() -> ce.CaseFacts | None:
    """The case a shared answer link describes (?form=&office=&received=&stage=), if any."""
    params = st.query_params
    if "received" not in params:
        return None
    try:
        received = date.fromisoformat(params.get("received", ""))
        stage_date = (date.fromisoformat(params["stage_date"]) if params.get("stage_date")
                      else None)
        stage = params.get("stage", "received")
        if stage not in TYPED_STAGES:
            raise ce.CaseInputError(f"unknown stage {stage!r}")
        return _typed_facts(None, params.get("form"), params.get("office"), received, stage,
                            stage_date)
    except (ce.CaseInputError, InvalidReceiptError, ValueError) as error:
        st.warning(f"This link does not describe a case we can read ({error}); type your "
                   "dates above instead.", icon=":material/link_off:")
        return None


def _permalink(facts: ce.CaseFacts) -> dict[str, str]:
    """Query parameters that reopen this answer: form, office, dates, stage; no receipt."""
    link = {"form": facts.form_type or "", "office": facts.intake_office or "",
            "received": facts.received_date.isoformat() if facts.received_date else ""}
    stage = facts.stage
    if stage != "received":
        link["stage"] = stage
        dated = [e for e in facts.events if e.stage == stage]
        if dated and not facts.undated_stage:
            link["stage_date"] = dated[-1].event_date.isoformat()
    return link


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


def _explain(facts: ce.CaseFacts, durations: pl.DataFrame | None, k: int,
             snapshot: Snapshot | None) -> None:
    st.header("Your case, explained")
    today = date.today()
    received = facts.received_date
    stage = facts.stage
    pending = stage not in ce.CLOSED_STAGES
    if pending and durations is not None and facts.form_type and received and snapshot:
        card = answer_card(
            durations, form_type=facts.form_type, office=facts.intake_office, received=received,
            stage=stage if stage not in {"other", "rejected"} else None, today=today, k=k,
            stage_started_on=_stage_started(facts),
            stage_stats=data.read_table(snapshot, "stage_stats"),
            official=data.read_table(snapshot, "official_comparison"),
        )
        show_card(card, k, snapshot.stamp, _permalink(facts))
    lines = [f"**Form {facts.form_type or 'unknown'}**"]
    if received:
        lines.append(f"received {when(received)} ({(today - received).days:,} days ago)")
    st.markdown(", ".join(lines) + ". " + ce.office_sentence(facts))
    title = (GENERIC_TITLES[stage] if facts.undated_stage
             else facts.events[-1].title if facts.events else "Case Was Received")
    st.subheader(f"Now: {title}")
    st.markdown(ce.STAGE_MEANINGS.get(stage, ce.STAGE_MEANINGS["other"]))
    st.markdown(f"**What usually comes next.** {ce.NEXT_STEPS.get(stage, ce.NEXT_STEPS['other'])}")
    if facts.events:
        st.subheader("Timeline so far")
        show_table(ce.timeline_rows(facts), "timeline")
    if pending and snapshot is not None and durations is not None and facts.form_type and received:
        return
    st.subheader("What similar cases suggest")
    if durations is None or snapshot is None:
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
    st.markdown(
        f"Your case was decided after **{comparison.waited_days:,} days**. Of "
        f"{comparison.n_cases:,} {comparison.scope}, "
        f"**{percent(comparison.share_decided_within)}** were decided within that time (cases "
        "still waiting counted as waiting)."
    )


def _stage_started(facts: ce.CaseFacts) -> date | None:
    """The date the case reached its current stage, when it is known."""
    if facts.undated_stage:
        return None
    dated = [e.event_date for e in facts.events if e.stage == facts.stage]
    return dated[-1] if dated else None


def _submit_link() -> None:
    if page_exists("submit.py"):
        st.page_link("views/submit.py", label="To add your case to the statistics, submit it",
                     icon=":material/upload:")


render()
