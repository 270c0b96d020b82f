"""Filter widgets whose values live in the URL, so a view can be shared as a link.

`?form=I-485&office=NSC&cohort=2025-Q2&by=current`: each widget starts from its query
parameter when the value exists in the data, and writes its value back (a default value is
removed, to keep links short). Streamlit's own `bind="query-params"` would put the
displayed label ("NSC – Nebraska Service Center") in the URL, so the codes are synced here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl
import streamlit as st

from pipeline.analytics.figures import ALL, OFFICE_COLUMNS, Selection, cohort_label, cohort_options
from pipeline.receipts import OFFICE_NAMES

OFFICE_KIND_LABELS = {"intake": "office that received it", "current": "office that has it now"}


def forms_by_size(durations: pl.DataFrame) -> list[str]:
    """Form types in the data, the most common first."""
    counts = durations.group_by("form_type").agg(pl.len().alias("n"))
    return counts.sort(["n", "form_type"], descending=[True, False])["form_type"].to_list()


def office_label(code: str) -> str:
    """'NSC – Nebraska Service Center', or 'All offices'."""
    return "All offices" if code == ALL else f"{code} – {OFFICE_NAMES.get(code, code)}"


def url_choice(
    container: Any, label: str, options: Sequence[str], param: str,
    format_func: Callable[[str], str] = str, radio: bool = False, help: str | None = None,
    keep_default: bool = False,
) -> str:
    """A selectbox (or radio) kept in sync with the query parameter `param`.

    The first option is the default; it is left out of the URL unless keep_default.
    """
    options = list(options)
    wanted = st.query_params.get(param)
    index = options.index(wanted) if wanted in options else 0
    if wanted is not None and wanted not in options:
        shown = ", ".join(format_func(o) for o in options[:12])
        more = f" and {len(options) - 12} more" if len(options) > 12 else ""
        st.warning(f"The link asks for {param}={wanted!r}, which this data does not have; "
                   f"showing {format_func(options[0])} instead. Choices: {shown}{more}.",
                   icon=":material/link_off:")
    widget = container.radio if radio else container.selectbox
    extra = {"horizontal": True} if radio else {}
    value = str(widget(label, options, index=index, key=f"filter_{param}",
                       format_func=format_func, help=help, **extra))
    if value == options[0] and not keep_default:
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != value:
        st.query_params[param] = value
    return value


def form_filter(durations: pl.DataFrame, container: Any) -> str:
    """A form-type picker kept in ?form= (the most common form by default)."""
    return url_choice(container, "Form", forms_by_size(durations), "form", keep_default=True,
                      help="The USCIS form number on your receipt notice.")


def office_filter(durations: pl.DataFrame, form: str, office_column: str, container: Any) -> str | None:
    """An office picker kept in ?office= (None = all offices)."""
    offices = sorted(
        durations.filter(pl.col("form_type") == form)[office_column].unique().drop_nulls().to_list()
    )
    office = url_choice(container, "Office", [ALL, *offices], "office", format_func=office_label)
    return None if office == ALL else office


def selection_filters(durations: pl.DataFrame, with_cohort: bool = True) -> Selection:
    """Form, office, filing cohort and office kind pickers, all kept in the URL."""
    columns = st.columns([1, 1.4, 1] if with_cohort else [1, 1.4])
    form = form_filter(durations, columns[0])
    kind = url_choice(st, "Count each case at the", list(OFFICE_KIND_LABELS), "by",
                      format_func=OFFICE_KIND_LABELS.__getitem__, radio=True,
                      help="A transferred case was received by one office and is decided by "
                           "another.")
    office = office_filter(durations, form, OFFICE_COLUMNS[kind], columns[1])
    cohort = ALL
    if with_cohort:
        cohort = url_choice(
            columns[2], "Filed", [ALL, *cohort_options(durations)], "cohort",
            format_func=lambda c: "any time" if c == ALL else cohort_label(c),
            help="The filing cohort: cases received in this year or quarter.",
        )
    processing, verified_only = processing_filters(durations)
    return Selection(form=form, office=office, cohort=None if cohort == ALL else cohort,
                     office_kind=kind, verified_only=verified_only, processing=processing)


PROCESSING_LABELS = {"regular": "regular", "premium": "premium", "any": "both, pooled"}


def processing_filters(durations: pl.DataFrame) -> tuple[str, bool]:
    """Regular or premium processing (never pooled unless asked) and verified cases only."""
    columns = st.columns([1.4, 1])
    processing = url_choice(
        columns[0], "Processing", list(PROCESSING_LABELS), "processing",
        format_func=PROCESSING_LABELS.__getitem__, radio=True,
        help="Premium processing runs on its own clock (15 or 45 days), so regular and "
             "premium cases are shown apart; 'both, pooled' mixes them.",
    )
    verified_only = False
    if "verified" in durations.columns:
        wanted = st.query_params.get("verified") == "1"
        verified_only = bool(columns[1].checkbox(
            "Verified cases only", value=wanted, key="filter_verified",
            help="Only cases whose history comes from the official Case Status API (polled "
                 "for people who opted in), not self-reported ones.",
        ))
        if verified_only and not wanted:
            st.query_params["verified"] = "1"
        elif not verified_only and "verified" in st.query_params:
            del st.query_params["verified"]
    return processing, verified_only
