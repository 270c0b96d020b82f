"""The dashboard's pages by section; a page whose module is not there yet is left out.

Page modules live in dashboards/views/, not dashboards/pages/: Streamlit treats a folder
named `pages` next to the entry script as an old-style (v1) multipage app until some session
has run `st.navigation`, so after a restart the first visitor of a shared link such as
/overview would get that page without the frame, and a sidebar listing raw file names.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

VIEWS_DIR = Path(__file__).resolve().parent / "views"

# section -> (module under views/, title, icon, url path)
SECTIONS: dict[str, list[tuple[str, str, str, str]]] = {
    "Statistics": [
        ("overview.py", "Overview", ":material/dashboard:", "overview"),
        ("processing_times.py", "Processing times", ":material/timer:", "processing-times"),
        ("trends.py", "Trends", ":material/trending_up:", "trends"),
        ("official.py", "Official vs community", ":material/compare_arrows:", "official"),
    ],
    "Your case": [
        ("my_case.py", "My case", ":material/person_search:", "my-case"),
        ("submit.py", "Submit a history", ":material/upload:", "submit"),
        ("delete.py", "Delete a submission", ":material/delete:", "delete"),
    ],
    "About the data": [
        ("health.py", "Pipeline health", ":material/monitor_heart:", "health"),
        ("methodology.py", "Methodology and privacy", ":material/menu_book:", "methodology"),
        ("download.py", "Download", ":material/download:", "download"),
    ],
}


def page_exists(module: str, views_dir: Path = VIEWS_DIR) -> bool:
    """Tell whether a page module is there (submit and delete have another owner)."""
    return (views_dir / module).is_file()


def navigation_pages(views_dir: Path = VIEWS_DIR) -> dict[str, list[st.Page]]:
    """The pages that exist, by section; the first one is the default page.

    The default page is served at `/` (Streamlit ignores its url_path), so it gets a hidden
    twin at its documented address too (`/overview`), which is not listed in the menu.
    """
    sections: dict[str, list[st.Page]] = {}
    first = True
    for section, entries in SECTIONS.items():
        pages = []
        for module, title, icon, url_path in entries:
            if not page_exists(module, views_dir):
                continue
            # the default page's own url_path only names it inside Streamlit (served at /)
            pages.append(st.Page(f"views/{module}", title=title, icon=icon,
                                 url_path="home" if first else url_path, default=first))
            if first:
                pages.append(st.Page(f"views/{module}", title=title, icon=icon,
                                     url_path=url_path, visibility="hidden"))
            first = False
        if pages:
            sections[section] = pages
    return sections

