"""Worker processes that do not outlive the process that started them.

Kept free of heavy imports: a pool worker runs `exit_with_parent` as soon as it has started,
before it imports polars and the rest for its first task.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1  # prctl option: the signal this process gets when its parent dies


def exit_with_parent(parent_pid: int) -> None:
    """Make this worker exit as soon as the process that started it is gone.

    A killed ingest (SIGKILL, out of memory) cannot shut its pool down; without this its
    workers would go on as orphans, burning CPU on chunks nobody will load. On Linux the
    kernel kills the worker (PR_SET_PDEATHSIG); elsewhere a thread watches the parent.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) == 0:
            if os.getppid() != parent_pid:  # the parent died before the call above
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
