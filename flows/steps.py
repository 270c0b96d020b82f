"""Turning a job's I/O steps into Prefect tasks with retries (see pipeline/jobs/steps.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from prefect import task
from prefect.cache_policies import NO_CACHE

F = TypeVar("F", bound=Callable[..., Any])


def retrying_task(delays_s: list[int]) -> Callable[[F], F]:
    """A wrapper that runs a step as a task, retried after each of `delays_s` seconds.

    Results are not persisted and nothing is cached, so no case data reaches Prefect's storage.
    """

    def wrap(step: F) -> F:
        decorate = task(
            retries=len(delays_s), retry_delay_seconds=list(delays_s),
            cache_policy=NO_CACHE, persist_result=False,
        )
        return cast(F, decorate(step))

    return wrap
