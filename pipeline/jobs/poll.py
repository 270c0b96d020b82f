"""The poll job: claim the due receipts, fetch with several requests in flight, store the
answers as they arrive, release what was not polled, publish. Written once: `timelines poll`
calls it directly and the `poll` flow calls it with a Prefect task around the fetch step.

Crash safety: answers are stored every `store_every_s` seconds in a small transaction (the
database is opened only for that moment), each stored receipt is recorded in the registry
(which frees it), and the run's lease on the rest is renewed as it goes. SIGTERM or Ctrl+C
stops sending, stores what is in hand, releases the rest and exits with PollStopped; after
SIGKILL the lease runs out within `PollSchedule.lease` and the next run polls exactly the
receipts that were not stored. The day's request count lives in the limiter, not here.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from types import FrameType

import httpx

from pipeline.jobs import refresh as refresh_job
from pipeline.jobs.poll_priority import ChangeModel, load_change_model
from pipeline.jobs.poll_results import (
    PollOutcome,
    PollRun,
    PollSummary,
    PreparedPoll,
    StoredPoll,
    prepare_answers,
    record_outcomes,
    store_poll,
    summarize,
)
from pipeline.prepare.anonymize import key_of
from pipeline.settings import Settings
from pipeline.sources.uscis.client import ApiSettings, CaseStatusClient, build_http_client
from pipeline.sources.uscis.fetch import (
    Answer,
    Clock,
    Failure,
    FetchProgress,
    OnProgress,
    ServiceDown,
    answers_are_synthetic,
    api_label,
    fetch_answers,
    rate_limit_path,
    schedule_from_env,
)
from pipeline.sources.uscis.ratelimit import SlotLimiter, SqliteRateLimiter
from pipeline.sources.uscis.registry import Claim, PollSchedule, open_registry
from pipeline.sources.uscis.send_gate import SendGate
from pipeline.sources.uscis.shared import PostgresRateLimiter, registry_url_from_env
from pipeline.store.db import open_store

__all__ = [
    "Answer", "Failure", "FetchProgress", "PollOutcome", "PollStopped", "PollSummary",
    "PreparedPoll", "ServiceDown", "StoredPoll", "answers_are_synthetic", "api_label",
    "open_limiter", "prepare_answers", "run_poll", "schedule_from_env", "store_poll",
]

FetchStep = Callable[..., FetchProgress]
STORE_EVERY_S = 2.0


class PollStopped(BaseException):
    """SIGTERM or SIGINT stopped the poll; what was fetched is stored, the rest released."""

    def __init__(self, signal_name: str, summary: PollSummary | None = None) -> None:
        super().__init__(f"the poll was stopped by {signal_name}")
        self.signal_name = signal_name
        self.summary = summary


def open_limiter(settings: Settings, api: ApiSettings, *, clock: Clock = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> SlotLimiter:
    """Open the shared request budget: Postgres with a shared registry, else the SQLite file."""
    url = registry_url_from_env(settings.env)
    if url is not None:
        return PostgresRateLimiter(url, api.rate_policy(), sleep=sleep)
    path = rate_limit_path(settings.ensure_home(), api_label(api.base_url))
    return SqliteRateLimiter(path, api.rate_policy(), clock=clock, sleep=sleep)


class _Signals:
    """SIGTERM and SIGINT as PollStopped, held back while a batch is being stored."""

    def __init__(self) -> None:
        self.depth = 0
        self.pending: str | None = None

    def handle(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self.depth:
            self.pending = self.pending or name
            return
        raise PollStopped(name)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Finish the block (a batch's transaction) before a signal stops the run."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1
        if not self.depth and self.pending is not None:
            name, self.pending = self.pending, None
            raise PollStopped(name)


@contextmanager
def stop_on_signals() -> Iterator[_Signals]:
    """Turn SIGTERM and SIGINT into PollStopped in this (main) thread while the block runs."""
    signals = _Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {s: signal.signal(s, signals.handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield signals
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _identity(step: FetchStep) -> FetchStep:
    return step


def run_poll(
    settings: Settings,
    api: ApiSettings,
    *,
    schedule: PollSchedule | None = None,
    force: bool = False,
    limit: int | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: OnProgress | None = None,
    publish: Callable[[Settings], object] | None = refresh_job.publish,
    wrap_fetch: Callable[[FetchStep], FetchStep] = _identity,
    transport: httpx.BaseTransport | None = None,
    store_every_s: float = STORE_EVERY_S,
) -> PollSummary:
    """Poll the due receipts once; `wrap_fetch` wraps the network step (the flow's retries)."""
    schedule = schedule or schedule_from_env(settings.env)
    label = api_label(api.base_url)
    key = key_of(settings)
    with (
        stop_on_signals() as signals,
        open_registry(settings.ensure_home(), settings.env) as registry,
        open_limiter(settings, api, clock=clock, sleep=sleep) as limiter,
    ):
        now = datetime.fromtimestamp(clock())
        budget = limiter.remaining_today()
        cap = budget if limit is None else min(limit, budget)
        model = _change_model(settings) if cap < len(registry.receipts()) else None
        claim = registry.claim_due(
            now=now, schedule=schedule, force=force, limit=cap,
            priority=model.chance_changed if model is not None else None,
        )
        progress, run = FetchProgress(), PollRun(now, label)
        if not claim.receipts:
            if claim.n_due and budget == 0:
                progress.quota_resets_at = api.rate_policy().next_reset(clock())
            return summarize(api.server, label, claim, progress, None)
        lease_renewed = [time.monotonic()]

        def store_batch() -> None:
            with signals.held():
                _store(progress.take_unstored())

        def _store(batch: FetchProgress) -> None:
            if batch.answers or batch.failures or batch.traffic:
                prepared = prepare_answers(batch, key, synthetic=answers_are_synthetic(label),
                                           now=now)
                message = summarize(api.server, label, claim, progress, run).describe()
                store_poll(settings, prepared, batch, run, still_tracked=registry.receipts,
                           message=message)
                record_outcomes(registry, prepared, schedule)
            if time.monotonic() - lease_renewed[0] >= schedule.lease.total_seconds() / 3:
                registry.renew(claim.claim_id, datetime.fromtimestamp(clock()) + schedule.lease)
                lease_renewed[0] = time.monotonic()

        stopped: PollStopped | None = None
        try:
            with build_http_client(api.base_url, api.timeout_s, transport,
                                   max_connections=api.max_in_flight + 1) as http:
                policy = api.rate_policy()  # the gate may gain what is kept above 1/rate
                gate = SendGate(policy.interval_s,
                                lead_cap_s=policy.interval_s - 1.0 / policy.requests_per_second)
                client = CaseStatusClient(http, api, limiter=limiter, clock=clock, sleep=sleep,
                                          send_gate=gate)
                fetch = wrap_fetch(_fetch_step)
                # ServiceDown is recorded in progress.problem; what was fetched is stored.
                with suppress(ServiceDown):
                    fetch(client, api, claim, progress, on_progress, store_batch, store_every_s)
        except PollStopped as signalled:
            stopped = signalled
        finally:
            with _signals_ignored():
                _store(progress.take_unstored())
                registry.release(claim.claim_id)
    summary = summarize(api.server, label, claim, progress, run,
                        stopped.signal_name if stopped else None)
    if stopped is not None:
        raise PollStopped(stopped.signal_name, summary)
    if publish is not None:
        publish(settings)
    return summary


def _fetch_step(
    client: CaseStatusClient,
    api: ApiSettings,
    claim: Claim,
    progress: FetchProgress,
    on_progress: OnProgress | None,
    on_tick: Callable[[], None],
    tick_s: float,
) -> FetchProgress:
    """Fetch every claimed receipt not settled yet, storing as it goes (the retried step)."""
    return fetch_answers(client, api, claim.receipts, progress, on_progress=on_progress,
                         on_tick=on_tick, tick_s=tick_s)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """Let the final store finish even if a second SIGTERM arrives."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _change_model(settings: Settings) -> ChangeModel:
    """Estimate the chance of a status change from the stored histories (empty store: prior)."""
    if not settings.database_path.exists():
        return ChangeModel()
    with open_store(settings.database_path) as con:
        return load_change_model(con)
