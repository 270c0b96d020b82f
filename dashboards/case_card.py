"""My case's answer card: one screen with a verdict, the odds, a window and what to do next.

The numbers come from pipeline.analytics.answer_card; this module only lays them out, in the
order a person asks: is my wait normal, when will I hear, what comes next, can I ask USCIS.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

import streamlit as st

from dashboards.formatting import TOO_FEW, interval, percent, when
from pipeline.analytics.answer_card import AnswerCard, citation
from pipeline.analytics.estimate import CaseEstimate


def show_card(card: AnswerCard, k: int, stamp: str, permalink: dict[str, str]) -> None:
    """Draw the answer card of a pending case."""
    estimate = card.estimate
    with st.container(border=True):
        st.markdown("#### Is my wait normal?")
        verdict = card.verdict
        if verdict is None:
            st.markdown(f"{TOO_FEW.capitalize()}: fewer than {k} similar cases to compare with.")
        else:
            st.markdown(f"**{verdict.sentence}**")
            st.caption(
                f"{percent(verdict.share_faster)} of {verdict.n_cases:,} similar cases "
                f"({card.group_words}) were decided within {verdict.waited_days:,} days "
                f"(95% CI {percent(verdict.ci_low)}–{percent(verdict.ci_high)}); cases still "
                "waiting count as waiting."
            )
            if verdict.unusual:
                st.markdown("That is unusually long: an inquiry to USCIS (below) is worth it.")
        st.markdown("#### When will I hear?")
        _odds(estimate, k)
        place = f" at {estimate.office}" if estimate.office else ""
        if card.peers is not None:
            p = card.peers
            st.markdown(f"Of **{p.n_cases:,}** {estimate.form_type} cases{place} filed in "
                        f"{p.month:%B %Y}, **{p.n_decided:,}** have been decided so far.")
        else:
            st.caption(f"{estimate.form_type} cases{place} filed in {estimate.received:%B %Y}: "
                       f"fewer than {k}, {TOO_FEW}.")
        st.markdown("#### What comes next")
        _next(card)
        _inquiry(card, estimate.received, estimate.today)
    _numbers_note(card)
    st.markdown(f"[Link to this answer](?{urlencode(permalink)}) (holds no receipt number: "
                "only the form, office, dates and stage)")
    st.caption("Cite as:")
    st.code(citation(card, stamp), language=None, wrap_lines=True)


def _odds(estimate: CaseEstimate, k: int) -> None:
    if not estimate.enough_data:
        st.markdown(f"{TOO_FEW.capitalize()}: fewer than {k} similar cases were still waiting "
                    f"after {estimate.waited_days:,} days, so there is nothing to estimate from.")
        return
    cols = st.columns(max(1, len(estimate.chances)))
    for col, chance in zip(cols, estimate.chances, strict=False):
        value = "not known yet" if chance.probability is None else percent(chance.probability)
        band = (None if chance.ci_low is None or chance.ci_high is None
                else f"95% CI {percent(chance.ci_low)}–{percent(chance.ci_high)}")
        col.metric(f"Decision within {chance.days} days", value, delta=band,
                   delta_color="off", delta_arrow="off")
    st.markdown(_window(estimate))


def _window(estimate: CaseEstimate) -> str:
    """The likely window, in the future tense."""
    if estimate.likely_from is None:
        return ("Too few similar cases have been decided this late to say when yours will "
                "likely be: the wait may be long.")
    later = when(estimate.likely_by) if estimate.likely_by else "later (the data do not reach it yet)"
    half = f" (half of them by **{when(estimate.median_date)}**)" if estimate.median_date else ""
    return (f"Your decision will likely come between **{when(estimate.likely_from)}** and "
            f"**{later}**: that is when the middle half of similar cases still waiting on day "
            f"{estimate.waited_days:,} are expected to be decided{half}.")


def _next(card: AnswerCard) -> None:
    step = card.next_stage
    if step is None:
        st.markdown("No published stage-to-stage time for this form and office yet.")
        return
    expected = f", around **{when(step.expected_on)}** for you" if step.expected_on else ""
    st.markdown(f"Usually next: **{step.what}**, typically **{step.median_days:,.0f} days** "
                f"{step.since}{expected} (95% CI {interval(step.ci_low, step.ci_high)} days, "
                f"n={step.n_cases:,}).")


def _inquiry(card: AnswerCard, received: date, today: date) -> None:
    if not card.inquiries:
        st.caption("USCIS's case-inquiry date (when it accepts a question about a case outside "
                   "normal processing times) appears here once an operator imports the official "
                   "processing times (`timelines import-official`).")
        return
    for inquiry in card.inquiries:
        published = f" (USCIS figures of {when(inquiry.published)})" if inquiry.published else ""
        st.markdown(f"**Can I ask USCIS?** {inquiry.sentence(received, today)}{published}")


def _numbers_note(card: AnswerCard) -> None:
    """Explain why the card's numbers rest on different counts of cases."""
    e = card.estimate
    if not e.enough_data or e.n_cases is None:
        return
    verdict_n = card.verdict.n_cases if card.verdict else None
    same = verdict_n == e.n_cases
    st.caption(
        f"Why different n's: **{e.n_cases:,}** similar cases ({card.group_words}; "
        f"{e.n_pending or 0:,} still waiting) make the verdict"
        + ("" if same or verdict_n is None else f" ({verdict_n:,} there)")
        + f"; the odds and the window rest on the **{e.n_at_risk or 0:,}** of them that had "
        f"waited at least {e.waited_days:,} days, since only those say what happens after that "
        "long. The month's peers count every case filed that month, decided or not. "
        + " ".join(f"{n[0].upper()}{n[1:]}." for n in e.notes) + " Not legal advice."
    )
