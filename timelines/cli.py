"""The `timelines` command: what operators and scripts run.

One-off commands run a job in-process, which is quick. When PREFECT_API_URL points at a
running Prefect server (e.g. `prefect server start`), or with --prefect, they run as Prefect
flows instead, so the run is recorded and visible in the Prefect UI; with --prefect and no
server, Prefect starts a temporary one (about 20 s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.settings import Settings, child_environment, default_variable
from timelines.app import CliError, app, echo_json, settings


@app.command()
def stats(
    form: Annotated[str | None, typer.Option("--form", help="Form type, e.g. I-485.")] = None,
    office: Annotated[str | None, typer.Option(
        "--office", help="Office code or name, e.g. NSC, SSC, Dallas.")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    by: Annotated[str, typer.Option(
        "--by", help="office (form x office), cohort (form x office x filing month), "
                     "form (all offices), form-cohort (form x filing month), category "
                     "(form x office x category) or form-category.")] = "office",
    office_basis: Annotated[str, typer.Option(
        "--office-basis", help="intake (office of the receipt) or current (office holding "
                               "the case now, where known).")] = "intake",
    processing: Annotated[str | None, typer.Option(
        "--processing", help="regular, premium, or any (both pooled). Default: a regular "
                             "and a premium row per group, never pooled.")] = None,
    category: Annotated[str | None, typer.Option(
        "--category", help="One category, e.g. EB-2, E21, NIW, (c)(9); 'unknown' for cases "
                           "that give none. Default: categories pooled.")] = None,
    verified_only: Annotated[bool, typer.Option(
        "--verified-only", help="Only cases whose history comes from the official Case Status "
                                "API (polled), not self-reported or imported ones.")] = False,
) -> None:
    """Show processing-time statistics per form type, office and processing type."""
    from pipeline.parse.fields import normalize_form_type
    from pipeline.parse.offices import office_code
    from pipeline.publish.reader import NoSnapshotError, current_snapshot
    from pipeline.publish.stats_view import StaleSnapshotError, stale_notice, stats_rows

    if output not in {"table", "json"}:
        raise CliError(f"--format must be table or json, not {output!r}")
    cfg = settings()
    try:
        wanted = normalize_form_type(form) if form else None
    except ValueError as error:
        raise CliError(str(error)) from error
    code = office_code(office) if office else None
    if office and code is None:
        raise CliError(f"unknown office {office!r}: use a service center (NSC, TSC, VSC, CSC, "
                       "NBC, PSC, ELIS, or the old SSC, ESC, WSC, MSC, YSC), a receipt prefix "
                       "or a field office code or city (DAL, Dallas)")
    wanted_category = _category_option(wanted, category)
    try:
        snapshot = current_snapshot(cfg.published_dir)
        rows = stats_rows(snapshot, form=wanted, office=code, by=by, office_basis=office_basis,
                          min_group_size=cfg.min_group_size, processing=processing,
                          category=wanted_category, verified_only=verified_only)
    except (NoSnapshotError, StaleSnapshotError, ValueError) as error:
        raise CliError(str(error)) from error
    if snapshot.notice:
        typer.echo(snapshot.notice, err=True)
    if output == "json":
        echo_json(rows)
        return
    if verified_only:
        typer.echo("verified cases only (histories polled from the official Case Status API)")
    _print_stats_table(rows, snapshot.is_synthetic, cfg.min_group_size)
    notice = stale_notice(rows, cfg.stale_after_days)
    if notice:
        typer.echo(f"note: {notice}")


def _category_option(form: str | None, raw: str | None) -> str | None:
    """Read --category as people write it (EB2, E21, c8), for the form when one is given."""
    if raw is None:
        return None
    from pipeline.parse.categories import VOCABULARY, category_in, read_category

    if raw.strip().lower() == "unknown":
        return "unknown"
    if form is None:  # the one code the forms' vocabularies agree on, else ask for --form
        readings = {f: category_in(f, raw) for f in (*VOCABULARY, "I-765")}
        found = {code for code in readings.values() if code is not None}
        if len(found) > 1:
            means = ", ".join(f"{code} for {f}" for f, code in readings.items() if code)
            raise CliError(f"--category {raw!r} means different categories for different "
                           f"forms ({means}): add --form")
        return found.pop() if found else raw.strip()
    try:
        return read_category(form, raw) or raw.strip()
    except ValueError as error:
        raise CliError(str(error)) from error


def _print_stats_table(rows: list[dict[str, Any]], synthetic: bool, k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        typer.echo("no statistics match these filters")
        return
    title = "Days from receipt to decision (Kaplan-Meier; pending cases count as still waiting)"
    if synthetic:
        title += "\nSYNTHETIC SAMPLE DATA - not real USCIS cases"
    with_cohort = "cohort" in rows[0]
    with_category = any(row["category"] != "all categories" for row in rows)
    columns = ["form", "office", *(["filed"] if with_cohort else []),
               *(["category"] if with_category else []), "processing", "cases", "decided",
               "pending", "median (95% CI)", "80th pct (95% CI)", "90th pct", "approved"]
    table = Table(title=title, caption="'not yet' = too few cases decided so far to reach it; "
                                        "regular and premium processing are separate rows")
    for column in columns:
        table.add_column(column, justify="left" if column in {
            "form", "office", "filed", "category", "processing"} else "right")

    def days(value: object) -> str:
        return "not yet" if value is None else f"{float(str(value)):.0f}"

    def with_ci(row: dict[str, Any], name: str) -> str:
        text = days(row[f"{name}_days"])
        if row[f"{name}_days"] is not None:
            text += f" ({days(row[f'{name}_ci_low'])}-{days(row[f'{name}_ci_high'])})"
        return text

    for row in rows:
        keys = [row["form_type"], row["office"] or "all",
                *([row["cohort"]] if with_cohort else []),
                *([row["category"]] if with_category else []), row["processing"]]
        if row["suppressed"]:
            table.add_row(*keys, f"< {k}", "", "", "too few cases to publish", "", "", "")
            continue
        approved = "" if row["approval_rate"] is None else f"{100 * row['approval_rate']:.0f}%"
        table.add_row(*keys, str(row["n_cases"]), str(row["n_decided"]), str(row["n_pending"]),
                      with_ci(row, "median"), with_ci(row, "p80"), days(row["p90_days"]), approved)
    Console(width=max(130, Console().width)).print(table)


def dashboard_command(cfg: Settings, port: int, host: str = "127.0.0.1") -> list[str]:
    """The command line that serves the Streamlit dashboard (loopback unless `host` says so)."""
    app_path = Path(__file__).resolve().parent.parent / "dashboards" / "app.py"
    return [
        sys.executable, "-m", "dashboards.serve", "run", str(app_path),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--client.showErrorDetails", "none", "--server.maxUploadSize", "12",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    host: Annotated[str, typer.Option(
        help="Address to listen on: 127.0.0.1 (this machine only, the default); another only "
             "behind a reverse proxy with TLS (docs/operations.md).")] = "127.0.0.1",
) -> None:
    """Serve the dashboard on http://127.0.0.1:PORT (reads published snapshots only)."""
    serve_dashboard(settings(), port, inbox_every=None, host=host)


def serve_dashboard(
    cfg: Settings, port: int, inbox_every: float | None, host: str = "127.0.0.1"
) -> None:
    """Run the dashboard server until it exits or this process gets SIGTERM or SIGINT.

    With inbox_every, store waiting submissions every that many seconds meanwhile (the
    demo's stand-in for the scheduled inbox flow). On a signal the server is stopped and
    waited for, so no Streamlit process is left behind.
    """
    import signal
    import threading
    import time

    env = child_environment(cfg)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    process = subprocess.Popen(dashboard_command(cfg, port, host), env=env)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"dashboard listening on http://{shown}:{port}  (Ctrl+C to stop)")
    if host not in {"127.0.0.1", "localhost", "::1"}:
        typer.echo(f"warning: {host} is reachable from other machines; the Submit page has no "
                   "login: serve it behind a reverse proxy with TLS (docs/operations.md)", err=True)
    if inbox_every:
        typer.echo(f"submissions made on the dashboard are counted within {inbox_every:.0f} s "
                   "(the inbox runs here while the demo serves)")
    next_inbox = time.monotonic() + (inbox_every or 0)
    try:
        while process.poll() is None and not stop.wait(1.0):
            if inbox_every and time.monotonic() >= next_inbox:
                _run_inbox_once(cfg)
                next_inbox = time.monotonic() + inbox_every
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stop.is_set():
        typer.echo("dashboard stopped")


def _run_inbox_once(cfg: Settings) -> None:
    """Store waiting submissions and carry out deletions; say what changed, never crash."""
    from pipeline.jobs.inbox import process_inbox
    from pipeline.store.db import DatabaseBusyError

    try:
        result = process_inbox(cfg)
    except DatabaseBusyError:
        return  # another process holds the database: the next round tries again
    except Exception as error:  # keep serving; say what went wrong
        typer.echo(f"inbox run failed: {error}", err=True)
        return
    if result.changed:
        typer.echo(f"inbox: {len(result.stored)} submission(s) stored, "
                   f"{len(result.deletions)} deletion(s); figures re-published")


@app.command()
def demo(
    cases: Annotated[int, typer.Option("--cases", "-n", min=1)] = 3000,
    seed: Annotated[int, typer.Option()] = 1,
    port: Annotated[int, typer.Option()] = 8501,
    serve: Annotated[bool, typer.Option("--dashboard/--no-dashboard")] = True,
    inbox_every: Annotated[int, typer.Option(
        "--inbox-every", min=5, help="Seconds between inbox runs while the dashboard serves "
                                     "(submissions are counted after the next one).")] = 60,
) -> None:
    """Sample + ingest + refresh as Prefect flows, then serve the dashboard."""
    cfg = settings()
    cfg.ensure_home()
    sample_dir = cfg.home / "sample"
    typer.echo(f"running the demo flow into {cfg.home.resolve()} (synthetic sample of {cases} cases)")
    from flows.demo import demo_flow

    loaded, refreshed = demo_flow(str(sample_dir), cases, seed)
    typer.echo(
        f"ingested {loaded.n_read} documents ({loaded.n_stored} stored, {loaded.n_rejected} rejected); "
        f"statistics for {refreshed.n_groups} groups"
    )
    # the temporary Prefect server the flow started stops when this process exits, also on
    # SIGTERM/SIGINT (serve_dashboard turns them into a normal return)
    if serve:
        serve_dashboard(cfg, port, inbox_every=inbox_every)


def _register_commands() -> None:
    """Import every module of timelines.commands so its commands join the app."""
    import importlib
    import pkgutil

    from timelines import commands

    for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"timelines.commands.{module}")


_register_commands()  # every command joins the app when this module is imported


def main() -> None:
    """Entry point: run the app, turning known errors into one clear line and exit code 2."""
    from pipeline.store.db import DatabaseBusyError

    # A busy 2-core machine can take longer than Prefect's default to start a temporary server.
    default_variable("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # No usage reports leave the machine; the server's heartbeat also contended for the
    # temporary server's SQLite file ("database is locked" in the demo's log).
    default_variable("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from timelines.choices import apply_choices

    command = typer.main.get_command(app)
    try:
        apply_choices(command)(standalone_mode=True)  # type: ignore[arg-type]
    except (CliError, DatabaseBusyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
