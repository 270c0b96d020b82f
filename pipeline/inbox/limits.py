"""How many submissions the public Submit page takes, per browser session, per client address
and in all, per hour.

Counts live in a small SQLite file in the inbox (`inbox/limits.sqlite`, 0600), so several
dashboard processes share them; addresses and session ids are kept only as salted hashes and
only for an hour. Past the global hourly cap a submission is still accepted, but it waits in
`inbox/review/` for an operator (`timelines review`) instead of being counted automatically.

The client address is the connecting peer's, unless that peer is one of the configured
trusted proxies (TIMELINES_TRUSTED_PROXIES): then it is the last address in X-Forwarded-For
that is not itself a trusted proxy. A forwarded address from anyone else is ignored, since
anyone can send that header.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import sqlite3
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.settings import SubmissionLimits

WINDOW = timedelta(hours=1)
LIMITS_FILE = "limits.sqlite"


@dataclass(frozen=True)
class Admission:
    """Whether a submission may be written now, and whether it must wait for review."""

    allowed: bool
    held_for_review: bool = False
    message: str | None = None


def _normal(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip().strip("[]")))
    except ValueError:
        return None


def client_address(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The address a request came from, honouring X-Forwarded-For only from a trusted proxy."""
    direct = _normal(peer or "") or "unknown"
    proxies = {a for a in (_normal(p) for p in trusted) if a}
    if direct not in proxies or not forwarded_for:
        return direct
    for hop in reversed(forwarded_for.split(",")):
        address = _normal(hop)
        if address is None:
            return direct  # a damaged header: fall back to the proxy itself
        if address not in proxies:
            return address
    return direct


def _connect(inbox_dir: Path) -> sqlite3.Connection:
    inbox_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = inbox_dir / LIMITS_FILE
    if not path.exists():
        with suppress(FileExistsError):  # another submission created it first
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    con.execute("CREATE TABLE IF NOT EXISTS salt (value TEXT NOT NULL)")
    con.execute("CREATE TABLE IF NOT EXISTS hits (scope TEXT NOT NULL, who TEXT NOT NULL,"
                " at TEXT NOT NULL)")
    return con


def _salt(con: sqlite3.Connection) -> str:
    row = con.execute("SELECT value FROM salt").fetchone()
    if row is not None:
        return str(row[0])
    value = secrets.token_hex(16)
    con.execute("INSERT INTO salt VALUES (?)", [value])
    return value


def _hash(salt: str, scope: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{scope}\0{value}".encode()).hexdigest()[:32]


def admit(
    inbox_dir: Path, limits: SubmissionLimits, *, session: str, address: str, now: datetime
) -> Admission:
    """Count one submission from this session and address; refuse it past their limits.

    Past the global hourly cap it is allowed but held for an operator's review.
    """
    con = _connect(inbox_dir)
    try:
        con.execute("BEGIN IMMEDIATE")
        since = (now - WINDOW).isoformat()
        con.execute("DELETE FROM hits WHERE at < ?", [since])
        salt = _salt(con)
        who = {"session": _hash(salt, "session", session), "address": _hash(salt, "address", address)}

        def count(scope: str, key: str | None = None) -> int:
            sql = "SELECT count(*) FROM hits WHERE scope = ? AND at >= ?"
            params = [scope, since]
            if key is not None:
                sql += " AND who = ?"
                params.append(key)
            return int(con.execute(sql, params).fetchone()[0])

        if count("session", who["session"]) >= limits.per_session:
            con.execute("COMMIT")
            return Admission(False, message=(
                f"this browser has submitted {limits.per_session} times in the last hour, the "
                "most we take: a submission is for your own cases. Try again in an hour"))
        if count("address", who["address"]) >= limits.per_address:
            con.execute("COMMIT")
            return Admission(False, message=(
                f"{limits.per_address} submissions came from your network in the last hour, the "
                "most we take from one address. Try again in an hour"))
        held = count("all") >= limits.global_per_hour
        stamp = now.isoformat()
        con.executemany("INSERT INTO hits VALUES (?, ?, ?)", [
            ["session", who["session"], stamp], ["address", who["address"], stamp],
            ["all", "", stamp]])
        con.execute("COMMIT")
        return Admission(True, held_for_review=held)
    finally:
        con.close()
