"""The demo flow: a synthetic sample through every step, as `timelines demo` shows it."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.ingest import ingest_flow
from flows.poll import demo_poll_flow
from flows.refresh import refresh_flow
from pipeline.analytics.stats import RefreshResult
from pipeline.sources.sample import write_sample
from pipeline.store.load import LoadResult


@task(cache_policy=NO_CACHE)
def generate_sample(out_dir: str, cases: int, seed: int) -> dict[str, int]:
    """Write synthetic histories in the real input formats."""
    return write_sample(Path(out_dir), cases, seed)


EXAMPLE_OFFICIAL = Path(__file__).resolve().parents[1] / "docs" / "examples" / \
    "official-processing-times-example.json"


@task(cache_policy=NO_CACHE)
def import_example_official() -> int:
    """Import the EXAMPLE official processing times (labelled so on the dashboard)."""
    from pipeline.analytics.official import import_official, read_official
    from pipeline.settings import load_settings
    from pipeline.store.db import open_store

    if not EXAMPLE_OFFICIAL.is_file():
        return 0
    with open_store(load_settings().database_path) as con:
        return import_official(con, read_official(EXAMPLE_OFFICIAL)).n_new


@flow(name="demo", log_prints=True)
def demo_flow(sample_dir: str, cases: int, seed: int) -> tuple[LoadResult, RefreshResult]:
    """Generate a synthetic sample, ingest it, poll the sandbox emulator, compute statistics."""
    generate_sample(sample_dir, cases, seed)
    loaded = ingest_flow([sample_dir])
    demo_poll_flow()  # the 50 sandbox receipts, over HTTP from an in-process emulator
    import_example_official()  # so Official vs community shows something, labelled EXAMPLE
    refreshed = refresh_flow()
    return loaded, refreshed
