"""Start the dashboard's Streamlit server with its heavy libraries imported first.

Streamlit runs each visitor's page script in a thread of its own, and Streamlit and Altair
import pandas lazily, inside the functions that draw a chart or a table. On a freshly started
server the first views run at the same time, several threads import pandas at once, and
Python's import-deadlock avoidance can hand one of them a half-initialised module
("partially initialized module 'pandas' has no attribute 'Timestamp'"). Imported here, in the
main thread before the server starts, they are complete before any script thread runs.
`timelines dashboard` (and so `demo` and the browser tests) start the server this way.
"""

from __future__ import annotations

import altair  # noqa: F401  (see the module docstring: import before any script thread)
import pandas  # noqa: F401
import polars  # noqa: F401
import pyarrow  # noqa: F401
from streamlit.web import cli


def main() -> None:
    """Run `streamlit ...` with the arguments given (e.g. `run dashboards/app.py`)."""
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
