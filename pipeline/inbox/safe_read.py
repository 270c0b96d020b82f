"""Reading a file an untrusted party may have placed in the inbox, safely.

Only regular files are read: a symbolic link is not followed (O_NOFOLLOW), a FIFO or a
device is never waited on (O_NONBLOCK, then fstat), and no more than a byte cap is read, so
a planted file can neither hang a run nor fill the memory.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

# An envelope holds at most a few cases (MAX_CASES_PER_SUBMISSION): far below this.
MAX_INBOX_FILE_BYTES = 4_000_000


class NotARegularFile(OSError):
    """An inbox entry that is a link, a FIFO, a device or a folder: never read."""


def read_inbox_file(path: Path, limit: int = MAX_INBOX_FILE_BYTES) -> bytes:
    """The bytes of a regular inbox file: no link followed, never blocking, at most `limit`.

    Raises FileNotFoundError if it is gone, NotARegularFile for anything else than a regular
    file, and OSError if it is larger than `limit`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if isinstance(error, FileNotFoundError):
            raise
        if os.path.islink(path):
            raise NotARegularFile(f"{path.name} is a symbolic link, not a file") from error
        raise
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(f"{path.name} is not a regular file")
        if info.st_size > limit:
            raise OSError(f"{path.name} is {info.st_size} bytes, over the limit of {limit}")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise OSError(f"{path.name} grew over the limit of {limit} bytes while read")
        return data
    finally:
        os.close(descriptor)
