"""A progress bar for polling, shared by the CLI (in-process) and the poll flow."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

OnProgress = Callable[[int, int, str], None]


@contextmanager
def poll_progress(enabled: bool = True) -> Iterator[OnProgress | None]:
    """Yield a callback (done, total, outcome) that draws a bar, created at its first call."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    counts: Counter[str] = Counter()
    state: dict[str, Any] = {}
    with Progress(
        TextColumn("polling"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[outcomes]}"),
        TimeRemainingColumn(),
    ) as bar:

        def update(done: int, total: int, outcome: str) -> None:
            if "task" not in state:
                state["task"] = bar.add_task("poll", total=total, outcomes="")
            counts[outcome] += 1
            text = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())
            bar.update(state["task"], completed=done, outcomes=text)

        yield update
