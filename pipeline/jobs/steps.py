"""How a job lets a flow wrap its I/O steps (retries, task runs) without knowing Prefect.

A job written once takes an `io_step` wrapper for the steps that touch the flaky world (files,
the network, a database another process may hold). In-process it is `plain_step`; a Prefect
flow passes a wrapper that turns the step into a task with retries. Parsing, anonymizing and
validating are never wrapped: retrying a bug repeats it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class IoStep(Protocol):
    """Wrap a step function, keeping its signature."""

    def __call__(self, step: F, /) -> F: ...


def plain_step(step: F) -> F:
    """Run the step as it is."""
    return step
