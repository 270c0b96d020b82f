"""The hashes of the stored case ids, kept beside a load of many chunks (pipeline.store.load)."""

from __future__ import annotations

import duckdb
import polars as pl

from pipeline.store.db import query_frame


class StoredCases:
    """The hashes of the stored case ids, kept beside a load of many chunks (in a temporary
    table of the load's connection, inside its transactions, so a rollback forgets what it
    rolls back). A chunk then looks up in `cases` only the ids whose hash is stored: a load
    of new cases never scans the table, which grows with every chunk it stores."""

    TABLE = "load_stored_case_hashes"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        con.execute(f"CREATE OR REPLACE TEMP TABLE {self.TABLE} AS SELECT hash(case_id) AS h FROM cases")

    @classmethod
    def drop(cls, con: duckdb.DuckDBPyConnection) -> None:
        """Forget the hashes (after the load's last transaction)."""
        con.execute(f"DROP TABLE IF EXISTS temp.{cls.TABLE}")

    def candidates(self, ids: pl.DataFrame) -> pl.DataFrame:
        """Those of `ids` (a frame of case_id) that may be stored: every stored one, and
        rarely one whose hash only collides with a stored id's."""
        self.con.register("incoming_ids", ids)
        try:
            return query_frame(self.con, f"SELECT case_id FROM incoming_ids WHERE hash(case_id) IN "
                                         f"(SELECT h FROM {self.TABLE})")
        finally:
            self.con.unregister("incoming_ids")

    def add(self) -> None:
        """Remember the cases just inserted (inside `_merge_rows`, while they are registered)."""
        self.con.execute(f"INSERT INTO {self.TABLE} SELECT hash(case_id) FROM incoming_cases"
                         " ANTI JOIN incoming_stored USING (case_id)")
