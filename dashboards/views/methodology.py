"""Methodology and privacy: the method in plain language, what is stored and what never is."""

from __future__ import annotations

import streamlit as st

from dashboards import data, notices

METHOD = """\
### Where the data comes from
Case histories that people chose to share: pasted from their myUSCIS account or the official
Case Status API, typed into the submit form, or polled (with consent) from USCIS's Case Status
API. Every history goes through the same steps: it is parsed, anonymized, checked, and stored;
records that fail a check are set aside with the reason (see *Pipeline health*).

### What a processing time means here
The wait of a case runs from its **receipt date** to its **first decision**: an approval (a card
being produced or mailed implies one) or a denial. The office is the one that took the case in
(from the receipt number) unless you choose the office that has it now.

### Counting the cases still waiting
Most trackers report the median of *finished* cases. Early in a backlog only the quick cases
are finished, so that figure looks shorter than the real wait. Here a case still waiting counts
as "has waited at least this long" (it is *right-censored* on the day it was last seen), and the
**Kaplan–Meier** method turns all cases, finished or not, into the share still waiting after
each day. The median is the day that share falls to 50%; the 80th percentile, the figure USCIS
publishes, the day it falls to 20%. When fewer than half of the cases are decided so far, the
median is **not reached yet**: the honest answer is "longer than what we have seen".

### How sure the figures are
Each figure comes with a **95% interval**: with this many cases, the true value lies in it with
95% confidence (log-log Greenwood bands, inverted for the percentiles). A “?” upper end means
the data cannot yet rule out a much longer wait. Shares (approvals, requests for evidence) use
Wilson intervals. Curves stop where fewer than {k} cases are still followed.

### Cases like mine
*My case* takes the cases of the same form and office, keeps those that had waited at least as
long as yours, and reads from them the chance of a decision within 30, 60 and 90 more days and
the dates by which a quarter, half and three quarters of them were decided. It always says how
many cases that rests on.

### Who is missing
People who share their case are not a random sample: those with long waits may share more
often, premium processing and some categories are rare, and a new office or form has few cases.
Compare with USCIS's own figures on *Official vs community*.
"""

PRIVACY = """\
### What is stored
For each case: a **keyed pseudonym** instead of the receipt number (a secret-key HMAC, so it
cannot be reversed by trying every receipt number), the form type, the office that took it in
and the one that has it now, the fiscal year, whether premium processing was paid, and the
**dated status steps** (e.g. "Case Was Received, 2025-03-03"). Each submission also stores when
consent was given and which consent text was shown.

### What is never stored
Receipt numbers (outside the opt-in polling registry, a separate file), names, A-numbers,
addresses, e-mail addresses, phone numbers, document names and contents, and free text.
A pasted myUSCIS answer contains names: they are dropped before anything is written.
The *My case* page stores nothing at all and never logs what you type.

### What is published
Only counts and figures of groups of at least **{k} cases**; a smaller group shows “too few
cases to publish” and no figure, so that no one's case can be picked out. The dashboard reads a
published copy of these tables, never the database itself.

### Deleting your data
Submitting a history gives you a **deletion code**, shown once. *Delete a submission* (or
`timelines delete CODE`) removes the submission and everything derived from it; the next
statistics refresh no longer counts it.

### Synthetic data
A demo installation runs on a generated sample (`timelines sample`). Whenever any case shown
is synthetic, every page says so in a yellow banner.

*This is community analytics, not legal advice. For advice about your case, ask an immigration
lawyer or a DOJ-accredited representative.*
"""


def render() -> None:
    """Draw the methodology-and-privacy page."""
    settings = data.app_settings()
    snapshot = data.open_snapshot(settings)
    k = notices.min_group_size(snapshot, settings) if snapshot else settings.min_group_size
    st.title("Methodology and privacy")
    if snapshot:
        notices.synthetic_banner(snapshot)
    method, privacy = st.tabs(["Method", "Privacy"])
    with method:
        st.markdown(METHOD.format(k=k))
    with privacy:
        st.markdown(PRIVACY.format(k=k))


render()
