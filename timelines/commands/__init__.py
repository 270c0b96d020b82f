"""Sub-commands of `timelines`, one module per area; each registers on `timelines.app.app`.

Modules here are imported when the CLI starts, so they must import heavy libraries
(polars, duckdb, prefect, httpx) inside their command functions, not at module level.
"""
