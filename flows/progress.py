"""Progress of long jobs, shared by the CLI (in-process) and the flows: a bar for polling,
lines for an ingest."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.store.load import LoadResult, OnLoadProgress

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


def ingest_progress(write: Callable[[str], None], every: int = 100_000) -> OnLoadProgress:
    """A callback for a load that writes a line once it has stored cases, then each time it
    has read `every` more records or committed more cases."""
    last = {"read": 0, "committed": 0}

    def report(result: LoadResult, committed: int) -> None:
        if not result.n_stored:
            return
        if last["read"] and result.n_read - last["read"] < every and committed == last["committed"]:
            return
        last.update(read=result.n_read, committed=committed)
        write(f"ingesting: {result.n_read:,} read so far, {result.n_stored:,} cases stored, "
              f"{result.n_rejected:,} rejected ({committed:,} cases committed: kept if it stops now)")

    return report
