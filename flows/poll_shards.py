"""The sharded poll: one scheduled run splits the due receipts between N runs of the poll
deployment, which separate worker processes (Prefect workers, or the processes `timelines
serve` starts) run at the same time under one shared rate limit and daily quota."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment

from pipeline.jobs import poll as polling
from pipeline.jobs.poll_shards import count_due, shard_sizes
from pipeline.settings import load_settings

POLL_DEPLOYMENT = "poll/tracked-receipts"  # flows.schedules.DEPLOYMENT_NAMES
WAIT_POLL_SECONDS = 2.0


class ShardFailed(RuntimeError):
    """A shard of the poll did not complete; the message names it and its state."""


@task(cache_policy=NO_CACHE)
def plan_shards(shards: int) -> list[int]:
    """How many due receipts each shard polls."""
    settings = load_settings()
    due = count_due(settings, polling.schedule_from_env(settings.env), datetime.now())
    return shard_sizes(due, shards)


def wait_for(flow_run_ids: list[UUID]) -> list[Any]:
    """Wait until every flow run has finished; return them."""
    with get_client(sync_client=True) as client:
        while True:
            runs = [client.read_flow_run(run_id) for run_id in flow_run_ids]
            if all(r.state is not None and r.state.is_final() for r in runs):
                return runs
            time.sleep(WAIT_POLL_SECONDS)


@flow(name="poll-sharded", log_prints=True)
def sharded_poll_flow(shards: int = 2, deployment: str = POLL_DEPLOYMENT) -> list[str]:
    """Start `shards` runs of the poll deployment, each on its share of the due receipts."""
    sizes = plan_shards(shards)
    if not sizes:
        print("nothing is due")
        return []
    started = [run_deployment(deployment, parameters={"limit": size}, timeout=0) for size in sizes]
    print(f"started {len(started)} poll shards of {', '.join(map(str, sizes))} receipts")
    finished = wait_for([run.id for run in started])
    failed = [r for r in finished if r.state is None or not r.state.is_completed()]
    if failed:
        raise ShardFailed("; ".join(
            f"shard {r.name} ended {r.state.name if r.state else 'without a state'}" for r in failed))
    return [r.name for r in finished]
