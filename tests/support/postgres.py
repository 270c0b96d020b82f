"""A throwaway Postgres server for tests and benchmarks of the shared registry and budget.

Uses Debian's postgresql binaries (`apt-get install -y postgresql`); as root, the server runs
as the `postgres` user. Listens only on a Unix socket in its own temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path


def postgres_bin() -> Path | None:
    """Return the folder of initdb and pg_ctl, or None when Postgres is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """Start a Postgres server in a temporary folder; yield its URL; stop and delete it."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        raise RuntimeError("Postgres is not installed: apt-get install -y postgresql")
    root = Path(tempfile.mkdtemp(prefix="timelines-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    os.chmod(root, 0o755)
    port = _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                                 "--auth=trust", "-E", "UTF8"]), **quiet)  # type: ignore[call-overload]
    options = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off"
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-o", options,
                                 "-l", str(root / "log"), "start"]), **quiet)  # type: ignore[call-overload]
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast",
                                     "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)
