"""The analytics inputs as hive-partitioned Parquet: the first step past one machine.

`export_lake` copies the tables every statistic is computed from (cases, status_events,
case_observations) into a folder of Parquet files partitioned by a key column; that folder can
live on shared storage or an object store. `open_lake` gives a DuckDB connection in which those
files are views under the same table names, so the statistics' SQL runs on them unchanged, in
any process on any machine that can read the folder. Nothing here holds a receipt number.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# table -> (query adding the partition column, partition column)
LAKE_TABLES: dict[str, tuple[str, str]] = {
    "cases": ("SELECT * FROM cases", "form_type"),
    "status_events": ("SELECT *, year(event_date) AS event_year FROM status_events", "event_year"),
    "case_observations": (
        "SELECT *, year(observed_at) AS observed_year FROM case_observations", "observed_year"),
}


def export_lake(con: duckdb.DuckDBPyConnection, target: Path) -> dict[str, int]:
    """Write each input table as partitioned Parquet under target/<table>/; return row counts."""
    counts = {}
    target.mkdir(parents=True, exist_ok=True)
    for table, (query, key) in LAKE_TABLES.items():
        folder = target / table
        counts[table] = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        if counts[table] == 0:  # no partition to write: keep the schema in an empty file
            (folder / f"{key}=none").mkdir(parents=True, exist_ok=True)
            con.execute(f"COPY ({query} LIMIT 0) TO '{folder / f'{key}=none' / 'empty.parquet'}' "
                        "(FORMAT parquet)")
            continue
        con.execute(f"COPY ({query}) TO '{folder}' "
                    f"(FORMAT parquet, PARTITION_BY ({key}), OVERWRITE_OR_IGNORE)")
    return counts


def open_lake(source: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection where each lake table is a view of its Parquet files."""
    con = duckdb.connect()
    for table, (_, key) in LAKE_TABLES.items():
        pattern = (source / table / "**" / "*.parquet").as_posix()
        added = "" if table == "cases" else f" EXCLUDE ({key})"  # a column the table lacks
        con.execute(f"CREATE VIEW {table} AS SELECT *{added} FROM read_parquet("
                    f"'{pattern}', hive_partitioning = true, union_by_name = true)")
    return con
