"""The dashboard frame: page setup, navigation, sidebar notices. Each page is a module in views/.

Run with `timelines dashboard` (or `streamlit run dashboards/app.py` with TIMELINES_HOME set).
It reads only the published Parquet snapshot, never the DuckDB file the flows write.
"""

from __future__ import annotations

import logging

import altair  # noqa: F401  (heavy modules first: never imported lazily by two script threads)
import pandas  # noqa: F401
import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import RerunException, StopException

from dashboards import data, notices
from dashboards.navigation import navigation_pages
from dashboards.tables import RESPONSIVE_CSS

_RETRIED = "_snapshot_retried"
LOG = logging.getLogger("dashboards")


def run_page(page: st.Page) -> None:
    """Run the chosen page; if its snapshot vanished mid-read, rerun once on the newer one.

    Any other error is logged on the server with its traceback; the page shows only that
    something went wrong (no paths, no code).
    """
    try:
        page.run()
    except StopException:
        raise
    except RerunException:
        raise
    except data.SnapshotGoneError:
        if st.session_state.get(_RETRIED):
            st.session_state[_RETRIED] = False
            st.error("The figures were republished twice while this page read them. Reload the page.")
            return
        st.session_state[_RETRIED] = True
        st.rerun()
    except Exception:
        LOG.exception("the page %s failed", page.title)
        st.error("Something went wrong on this page. It has been logged; please try again later.")
    st.session_state[_RETRIED] = False


def main() -> None:
    """Set up the page and the sidebar notices, then run the chosen page."""
    st.set_page_config(page_title="USCIS case timelines", page_icon=":material/schedule:",
                       layout="wide")
    try:
        settings = data.app_settings()
    except ValueError as error:
        st.error(f"The dashboard cannot start: {error}")
        st.stop()
    try:
        snapshot = data.open_snapshot(settings)
    except data.SnapshotGoneError:
        snapshot = None
    st.html(RESPONSIVE_CSS)
    if snapshot is not None and snapshot.notice:
        st.sidebar.warning(snapshot.notice)
    page = st.navigation(navigation_pages())
    st.sidebar.markdown("**USCIS case timelines**  \nCommunity-reported, anonymized, open.")
    notices.freshness_sidebar(snapshot, data.writer_activity(settings))
    run_page(page)


main()
