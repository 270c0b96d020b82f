"""Running the installed `timelines` command as a user would, in a clean environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# Variables the program reads: a child process gets none of the caller's.
READ_BY_THE_CODE = ("TIMELINES_", "USCIS_", "PREFECT_API_URL", "PREFECT_PROFILE")


def timelines_exe() -> str:
    """The `timelines` executable of this environment."""
    exe = shutil.which("timelines", path=str(Path(sys.executable).parent))
    assert exe, "the timelines command is not installed in this environment"
    return exe


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a child process: this test's home, none of the caller's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(READ_BY_THE_CODE)}
    return env | {"TIMELINES_HOME": str(home), "TIMELINES_ENV_FILE": os.devnull} | extra


def timelines(
    *args: str, home: Path, stdin: str | None = None, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run `timelines ARGS` with TIMELINES_HOME=home (and `extra` variables); capture output."""
    return subprocess.run(
        [timelines_exe(), *args], env=child_env(home, **extra), capture_output=True, text=True,
        timeout=timeout, input=stdin,
    )
