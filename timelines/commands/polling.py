"""`timelines poll`, `timelines track add|list|remove` and `timelines emulator`: polling the
official Case Status API for opted-in receipts.

Point the poller at a local emulator instead of USCIS with
USCIS_API_BASE_URL=http://127.0.0.1:PORT USCIS_CLIENT_ID=any USCIS_CLIENT_SECRET=any.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timelines.app import CliError, PrefectOption, app, echo_json, settings, use_prefect

if TYPE_CHECKING:
    from pipeline.jobs.poll import PollSummary
    from pipeline.settings import Settings
    from pipeline.sources.uscis.client import ApiSettings
    from pipeline.sources.uscis.registry import TrackedReceipt

track_app = typer.Typer(
    help="Opt receipt numbers in (or out) of polling the official Case Status API.",
    no_args_is_help=True,
)
app.add_typer(track_app, name="track")

EMULATOR_HINT = (
    "no credentials? Run `timelines emulator --port 8765` in another terminal and use "
    "USCIS_API_BASE_URL=http://127.0.0.1:8765 USCIS_CLIENT_ID=any USCIS_CLIENT_SECRET=any"
)


def _api_settings() -> ApiSettings:
    from pipeline.sources.uscis.client import SettingsError, api_settings_from_env

    try:
        return api_settings_from_env(settings().env)
    except SettingsError as error:
        raise CliError(f"{error}\n{EMULATOR_HINT}") from error


@app.command()
def poll(
    force: Annotated[bool, typer.Option("--force", help="Poll every tracked receipt now.")] = False,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Poll at most N receipts.")
    ] = None,
    report: Annotated[
        bool, typer.Option("--report", help="Show API traffic by day and status code instead.")
    ] = False,
    days: Annotated[int, typer.Option("--days", min=1, help="Days shown by --report.")] = 14,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    prefect: PrefectOption = None,  # type: ignore[assignment]
) -> None:
    """Poll the official Case Status API for the tracked receipts that are due."""
    if output not in {"table", "json"}:
        raise CliError(f"--format must be table or json, not {output!r}")
    cfg = settings()
    if report:
        _print_report(cfg, days, output)
        return
    from flows.progress import poll_progress
    from pipeline.jobs.poll import PollStopped, run_poll, schedule_from_env

    api = _api_settings()
    try:
        schedule = schedule_from_env(settings().env)
    except ValueError as error:
        raise CliError(str(error)) from error
    try:
        if use_prefect(prefect):
            from flows.poll import PollFailed, poll_flow

            try:
                summary = poll_flow(force=force, limit=limit, show_progress=output == "table")
            except PollFailed as error:
                raise CliError(str(error)) from error
        else:
            with poll_progress(output == "table") as on_progress:
                summary = run_poll(
                    cfg, api, schedule=schedule, force=force, limit=limit, on_progress=on_progress
                )
    except PollStopped as stopped:
        if stopped.summary is not None:
            _print_summary(stopped.summary, output)
        raise typer.Exit(143 if stopped.signal_name == "SIGTERM" else 130) from None
    _print_summary(summary, output)
    if summary.problem:
        raise CliError(summary.problem)
    if no_usable_answer(summary):
        raise CliError(
            f"none of the {summary.n_due} due receipts got a usable answer from the API "
            "(every request failed or was refused): check USCIS_API_BASE_URL and the network"
        )


def no_usable_answer(summary: PollSummary) -> bool:
    """True when receipts were due but no request got an answer about any case."""
    usable = sum(summary.outcomes.get(name, 0) for name in ("ok", "not_found", "invalid"))
    return summary.n_due > 0 and usable == 0


def _print_summary(summary: PollSummary, output: str) -> None:
    if output == "json":
        echo_json(
            {
                "api": summary.api,
                "server": summary.server,
                "claimed": summary.n_claimed,
                "stopped_by": summary.stopped_by,
                "tracked": summary.n_tracked,
                "due": summary.n_due,
                "held_by_another_run": summary.n_held,
                "polled": summary.n_polled,
                "outcomes": summary.outcomes,
                "not_polled": summary.n_left,
                "requests_by_status": {str(k): v for k, v in summary.requests.items()},
                "run_id": summary.run_id,
                "new_cases": summary.n_new_cases,
                "new_events": summary.n_new_events,
                "cases_with_new_events": summary.n_updated_cases,
                "quota_resets_at": summary.quota_resets_at,
                "problem": summary.problem,
                "message": summary.describe(),
            }
        )
        return
    typer.echo(summary.describe())
    if summary.requests:
        counts = ", ".join(
            f"{n} x {'no answer' if status == 0 else status}"
            for status, n in summary.requests.items()
        )
        typer.echo(f"requests to {summary.server}: {sum(summary.requests.values())} ({counts})")


def _print_report(cfg: Settings, days: int, output: str) -> None:
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from pipeline.publish.reader import NoSnapshotError, current_snapshot
    from pipeline.sources.uscis.traffic_report import production_readiness, traffic_table

    try:
        snapshot = current_snapshot(cfg.published_dir)
    except NoSnapshotError as error:
        raise CliError(str(error)) from error
    if not (snapshot.path / "api_traffic.parquet").exists():
        raise CliError("no API traffic has been published yet: run `timelines poll` first")
    traffic = snapshot.table("api_traffic")
    zone = _quota_zone()
    today = datetime.now(ZoneInfo(zone)).date()
    table = traffic_table(traffic, today - timedelta(days=days - 1))
    readiness = production_readiness(traffic, today)
    if output == "json":
        echo_json(
            {
                "days": table.to_dicts(),
                "production_ready": readiness.qualifies,
                "streak": readiness.streak,
                "checked_days": [
                    {"day": d.day, "ok": d.n_ok, "client_errors": d.n_client_errors,
                     "qualifies": d.qualifies}
                    for d in readiness.days
                ],
                "message": readiness.describe(),
            }
        )
        return
    from rich.console import Console
    from rich.table import Table

    if table.is_empty():
        typer.echo(f"no requests in the last {days} days")
    else:
        view = Table(title=f"Requests to the Case Status API by day ({zone}) and HTTP status")
        for column in table.columns:
            view.add_column("no answer" if column == "0" else column,
                            justify="left" if column in {"day", "api"} else "right")
        for row in table.iter_rows():
            view.add_row(*(str(v) for v in row))
        Console(width=max(100, Console().width)).print(view)
    if traffic.filter(traffic["api"] == "sandbox").is_empty():
        typer.echo("No sandbox traffic is recorded yet (emulator traffic does not count). USCIS "
                   "asks for five consecutive weekdays of sandbox traffic with 200 and 4xx "
                   "answers before it grants production access: see docs/polling.md.")
    else:
        typer.echo(readiness.describe())


def _quota_zone() -> str:
    from pipeline.sources.uscis.client import ENV_ZONE
    from pipeline.sources.uscis.ratelimit import DEFAULT_ZONE

    return settings().env.get(ENV_ZONE, "").strip() or DEFAULT_ZONE


def _normalized(receipts: list[str]) -> list[str]:
    from pipeline.receipts import InvalidReceiptError, normalize_receipt

    good, bad = [], []
    for raw in receipts:
        try:
            good.append(normalize_receipt(raw))
        except InvalidReceiptError as error:
            bad.append(str(error))
    if bad:
        raise CliError("nothing was added:\n  " + "\n  ".join(bad))
    return good


@track_app.command("add")
def track_add(
    receipts: Annotated[list[str], typer.Argument(help="Receipt numbers, e.g. EAC2190000001.")],
    consent: Annotated[
        bool, typer.Option("--consent", help="Confirm that you agree to the text shown.")
    ] = False,
) -> None:
    """Opt receipt numbers in to daily polling of the official Case Status API."""
    from pipeline.sources.uscis.registry import CONSENT_TEXT, mask_receipt, open_registry

    canonical = _normalized(receipts)
    if not consent:
        typer.echo(CONSENT_TEXT)
        raise CliError("nothing was added: read the text above and run again with --consent")
    cfg = settings()
    with open_registry(cfg.ensure_home(), cfg.env) as registry:
        added = registry.add(canonical, now=datetime.now())
    already = len(set(canonical)) - len(added)
    typer.echo(
        f"now tracking {len(added)} more receipt{'s' if len(added) != 1 else ''}"
        + (f" ({already} already tracked)" if already else "")
        + (": " + ", ".join(mask_receipt(r) for r in added[:10]) if added else "")
        + (" ..." if len(added) > 10 else "")
    )
    where = registry.path or "the shared registry database (TIMELINES_REGISTRY_URL)"
    typer.echo(f"run `timelines poll` to poll them now (the receipt numbers stay in {where} only)")


@track_app.command("list")
def track_list(
    show: Annotated[bool, typer.Option("--show", help="Show the full receipt numbers.")] = False,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """List the tracked receipts (most digits hidden), their last poll and when they are due."""
    from pipeline.jobs.poll import schedule_from_env
    from pipeline.sources.uscis.registry import open_registry

    if output not in {"table", "json"}:
        raise CliError(f"--format must be table or json, not {output!r}")
    cfg = settings()
    try:
        schedule = schedule_from_env(settings().env)
    except ValueError as error:
        raise CliError(str(error)) from error
    with open_registry(cfg.ensure_home(), cfg.env) as registry:
        entries = registry.tracked(schedule)
    now = datetime.now()
    rows = [_entry_row(entry, show, now) for entry in entries]
    if output == "json":
        echo_json(rows)
        return
    if not rows:
        typer.echo("no receipts are tracked: add yours with `timelines track add RECEIPT --consent`")
        return
    from rich.console import Console
    from rich.table import Table

    view = Table(title=f"{len(rows)} tracked receipts")
    for column in ("receipt", "added", "last polled", "last outcome", "next poll"):
        view.add_column(column)
    for row in rows:
        outcome = row["last_outcome"] or ""
        if row["last_reason"]:
            outcome += f": {row['last_reason']}"
        view.add_row(row["receipt"], row["added_at"][:16].replace("T", " "),
                     (row["last_polled_at"] or "never")[:16].replace("T", " "),
                     outcome, row["next_poll"])
    Console(width=max(110, Console().width)).print(view)


def _entry_row(entry: TrackedReceipt, show: bool, now: datetime) -> dict[str, Any]:
    if entry.next_due is None:  # `timelines poll --force` still polls it
        why = "USCIS calls the number invalid" if entry.last_outcome == "invalid" else (
            f"decided {entry.decided_at}, grace period over")
        next_poll = f"no more ({why})"
    elif entry.next_due <= now:
        next_poll = "at the next run"
    else:
        next_poll = entry.next_due.isoformat(sep=" ", timespec="minutes")
    return {
        "receipt": entry.receipt if show else entry.masked,
        "added_at": entry.added_at.isoformat(),
        "consent_version": entry.consent_version,
        "last_polled_at": entry.last_polled_at.isoformat() if entry.last_polled_at else None,
        "last_outcome": entry.last_outcome,
        "last_reason": entry.last_reason,
        "decided_on": entry.decided_at.isoformat() if entry.decided_at else None,
        "next_due": entry.next_due.isoformat() if entry.next_due else None,
        "next_poll": next_poll,
    }


@track_app.command("remove")
def track_remove(
    receipt: Annotated[str, typer.Argument(help="The receipt number to stop tracking.")],
) -> None:
    """Stop tracking a receipt and delete its case's data everywhere (then re-publish)."""
    from pipeline.jobs.forget import forget_receipt
    from pipeline.receipts import InvalidReceiptError
    from pipeline.sources.uscis.registry import mask_receipt

    cfg = settings()
    try:
        forgotten = forget_receipt(cfg, receipt)
    except InvalidReceiptError as error:
        raise CliError(str(error)) from error
    masked = mask_receipt(receipt.replace("-", "").replace(" ", "").upper())
    tracked = "removed from the registry" if forgotten.was_tracked else "was not tracked"
    if forgotten.deleted:
        tables = ", ".join(f"{n} from {table}" for table, n in forgotten.deleted.items())
        typer.echo(f"{masked} {tracked}; deleted its case data ({tables}); statistics "
                   "recomputed and re-published")
    else:
        typer.echo(f"{masked} {tracked}; no data of this case was stored")


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8765,
    rate: Annotated[int, typer.Option("--rate", min=1, help="Requests per second.")] = 5,
    quota: Annotated[int, typer.Option("--quota", min=0, help="Requests per day.")] = 1000,
    token_ttl: Annotated[
        float, typer.Option("--token-ttl", min=1, help="Seconds an access token lives.")
    ] = 1799.0,
    advance_every: Annotated[
        int, typer.Option("--advance-every", min=0,
                          help="Reveal a case's next status every N polls of it (0: never).")
    ] = 0,
    delay_ms: Annotated[
        float, typer.Option("--delay-ms", min=0, help="Answer each case request after N ms.")
    ] = 0.0,
    tolerance_ms: Annotated[
        float, typer.Option("--tolerance-ms", min=0,
                            help="Spike arrest refuses requests closer than 1/rate minus this.")
    ] = 10.0,
    synthetic: Annotated[
        int, typer.Option("--synthetic", min=0,
                          help="Also serve N made-up receipts EAC2499000001... (load tests).")
    ] = 0,
) -> None:
    """Serve an emulator of the developer.uscis.gov sandbox (50 staging receipts) locally."""
    from pipeline.sources.uscis.emulator import EmulatorConfig, EmulatorServer, serve_emulator

    config = EmulatorConfig(
        requests_per_second=rate, daily_quota=quota, token_ttl_s=token_ttl,
        advance_every=advance_every, answer_delay_ms=delay_ms, spike_tolerance_ms=tolerance_ms,
        synthetic_receipts=synthetic,
    )

    def ready(server: EmulatorServer) -> None:
        typer.echo(f"USCIS sandbox emulator on {server.base_url}  (Ctrl+C to stop)")
        typer.echo(
            f"poll it with: USCIS_API_BASE_URL={server.base_url} USCIS_CLIENT_ID=any "
            f"USCIS_CLIENT_SECRET=any USCIS_API_RATE_PER_SECOND={rate} timelines poll"
        )

    try:
        serve_emulator(port, config=config, on_ready=ready)
    except OSError as error:
        raise CliError(f"cannot listen on 127.0.0.1:{port}: {error.strerror or error}") from error
