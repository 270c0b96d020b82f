"""The `timelines` command: what operators and scripts run.

One-off commands run a job in-process, which is quick. When PREFECT_API_URL points at a
running Prefect server (e.g. `prefect server start`), or with --prefect, they run as Prefect
flows instead, so the run is recorded and visible in the Prefect UI; with --prefect and no
server, Prefect starts a temporary one (about 20 s).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.settings import Settings, child_environment, default_variable
from timelines.app import CliError, PrefectOption, app, echo_json, settings, use_prefect


@app.command()
def sample(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the synthetic files into.")],
    cases: Annotated[int, typer.Option("--cases", "-n", min=1, help="How many cases.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed: the same seed writes the same files.")] = 1,
) -> None:
    """Write SYNTHETIC case histories in the real input formats (labelled synthetic)."""
    from pipeline.sources.sample import write_sample

    counts = write_sample(out_dir, cases, seed)
    typer.echo(
        f"wrote {sum(counts.values())} synthetic cases to {out_dir} "
        f"({counts['case_status_api']} as Case Status API answers, "
        f"{counts['myuscis']} as myUSCIS case_status answers)"
    )


@app.command()
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (.json, .jsonl, .csv, .tsv).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="The day a historical file was last brought up to date (YYYY-MM-DD): "
                        "pending cases without a last_checked of their own are censored there.")] = None,
    columns: Annotated[str | None, typer.Option(
        "--columns", help="Map a table's headers to ours: 'Filed=received_date,PD=ignore'.")] = None,
    prefect: PrefectOption = None,  # type: ignore[assignment]
    inbox: Annotated[bool, typer.Option(
        "--inbox", help="Store the submissions waiting in the inbox and carry out deletion "
                        "requests (what the scheduled inbox flow does).")] = False,
) -> None:
    """Parse, anonymize, validate and store case histories; print what was kept and rejected."""
    from pipeline.jobs import ingest as ingest_job
    from pipeline.sources.files import InputError

    if inbox:
        from timelines.commands.submissions import ingest_inbox

        ingest_inbox(output, use_prefect(prefect))
        if not paths:
            return
    if not paths:
        raise CliError("give files or folders to ingest, or --inbox for the submissions inbox")
    from pipeline.parse.columns import parse_column_map

    cfg = settings()
    try:
        day = _as_of_date(as_of)
        column_map = parse_column_map(columns)
        if use_prefect(prefect):
            from flows.ingest import ingest_flow

            result = ingest_flow([str(p) for p in paths], as_of=day.isoformat() if day else None,
                                 columns=columns)
        else:
            result = ingest_job.ingest(cfg, paths, as_of=day, columns=column_map)
    except (InputError, ValueError) as error:
        raise CliError(f"cannot ingest: {error}") from error
    summary = {
        "run_id": result.run_id,
        "read": result.n_read,
        "stored": result.n_stored,
        "new_cases": result.n_new_cases,
        "new_events": result.n_new_events,
        "rejected": result.n_rejected,
        "rejections": [{"origin": r.origin, "reasons": list(r.reasons)} for r in result.rejections],
        "table_rows": {
            "read": result.rows_read, "stored": result.rows_stored,
            "quarantined": result.rows_quarantined, "refused": result.rows_refused,
            "blank": result.rows_blank,
        },
    }
    if output == "json":
        echo_json(summary)
        return
    typer.echo(
        f"read {result.n_read} documents and table rows: stored {result.n_stored} cases "
        f"({result.n_new_cases} new cases, {result.n_new_events} new events), "
        f"rejected {result.n_rejected}"
    )
    if result.rows_read or result.rows_blank:
        typer.echo(
            f"table rows: {result.rows_read} read = {result.rows_stored} stored + "
            f"{result.rows_quarantined} quarantined + {result.rows_refused} refused"
            + (f" ({result.rows_blank} blank rows skipped)" if result.rows_blank else "")
        )
    for rejection in result.rejections[:25]:
        typer.echo(f"  rejected {rejection.origin}: {'; '.join(rejection.reasons)}")
    if result.n_rejected > 25:
        typer.echo(f"  ... and {result.n_rejected - 25} more (all are kept in the quarantine table)")


def _as_of_date(text: str | None) -> date | None:
    if text is None:
        return None
    from pipeline.parse.cells import parse_sheet_date
    from pipeline.parse.errors import ParseError

    try:
        return parse_sheet_date(text, "--as-of")
    except ParseError as error:
        raise ValueError(str(error)) from error


@app.command()
def refresh(prefect: PrefectOption = None) -> None:  # type: ignore[assignment]
    """Recompute the statistics tables and publish them."""
    from pipeline.jobs import refresh as refresh_job

    cfg = settings()
    if use_prefect(prefect):
        from flows.refresh import refresh_flow

        result = refresh_flow()
    else:
        result = refresh_job.refresh_and_publish(cfg)
    typer.echo(
        f"statistics recomputed from {result.n_cases} cases: {result.n_groups} form x office groups, "
        f"{result.n_suppressed} suppressed (fewer than {cfg.min_group_size} cases)"
    )


@app.command()
def stats(
    form: Annotated[str | None, typer.Option("--form", help="Form type, e.g. I-485.")] = None,
    office: Annotated[str | None, typer.Option("--office", help="Office code, e.g. NSC.")] = None,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    by: Annotated[str, typer.Option(
        "--by", help="office (form x office), cohort (form x office x filing month), "
                     "form (all offices) or form-cohort (form x filing month).")] = "office",
    office_basis: Annotated[str, typer.Option(
        "--office-basis", help="intake (office of the receipt) or current (office holding "
                               "the case now, where known).")] = "intake",
    verified_only: Annotated[bool, typer.Option(
        "--verified-only", help="Only cases whose history comes from the official Case Status "
                                "API (polled), not self-reported or imported ones.")] = False,
) -> None:
    """Show processing-time statistics per form type and office (or filing month)."""
    from pipeline.parse.fields import normalize_form_type
    from pipeline.publish.reader import NoSnapshotError, current_snapshot
    from pipeline.publish.stats_view import StaleSnapshotError, stats_rows
    from pipeline.receipts import office_of

    if output not in {"table", "json"}:
        raise CliError(f"--format must be table or json, not {output!r}")
    cfg = settings()
    try:
        wanted = normalize_form_type(form) if form else None
    except ValueError as error:
        raise CliError(str(error)) from error
    code = office_of(office) if office else None
    if office and code is None:
        raise CliError(f"unknown office {office!r}: use NSC, TSC, VSC, CSC, NBC, PSC or ELIS")
    try:
        snapshot = current_snapshot(cfg.published_dir)
        rows = stats_rows(snapshot, form=wanted, office=code, by=by, office_basis=office_basis,
                          min_group_size=cfg.min_group_size, verified_only=verified_only)
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
    columns = ["form", "office", *(["filed"] if with_cohort else []), "cases", "decided",
               "pending", "median (95% CI)", "80th pct (95% CI)", "90th pct", "approved"]
    table = Table(title=title, caption="'not yet' = too few cases decided so far to reach it")
    for column in columns:
        table.add_column(column, justify="left" if column in {"form", "office", "filed"} else "right")

    def days(value: object) -> str:
        return "not yet" if value is None else f"{float(str(value)):.0f}"

    def with_ci(row: dict[str, Any], name: str) -> str:
        text = days(row[f"{name}_days"])
        if row[f"{name}_days"] is not None:
            text += f" ({days(row[f'{name}_ci_low'])}-{days(row[f'{name}_ci_high'])})"
        return text

    for row in rows:
        keys = [row["form_type"], row["office"] or "all", *([row["cohort"]] if with_cohort else [])]
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
        sys.executable, "-m", "streamlit", "run", str(app_path),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--client.showErrorDetails", "none", "--server.maxUploadSize", "12",
        "--browser.gatherUsageStats", "false", "--client.toolbarMode", "viewer",
    ]


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
    host: Annotated[str, typer.Option(
        help="Address to listen on: 127.0.0.1 (this machine only, the default); 0.0.0.0 or a "
             "public address only behind a reverse proxy with TLS (docs/operations.md).")] = "127.0.0.1",
) -> None:
    """Serve the dashboard on http://127.0.0.1:PORT (reads published snapshots only)."""
    cfg = settings()
    env = child_environment(cfg)
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"dashboard listening on http://{shown}:{port}  (Ctrl+C to stop)")
    if host not in {"127.0.0.1", "localhost", "::1"}:
        typer.echo(f"warning: {host} is reachable from other machines; the Submit page has no "
                   "login: serve it behind a reverse proxy with TLS (docs/operations.md)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        subprocess.run(dashboard_command(cfg, port, host), env=env, check=False)


@app.command()
def demo(
    cases: Annotated[int, typer.Option("--cases", "-n", min=1)] = 3000,
    seed: Annotated[int, typer.Option()] = 1,
    port: Annotated[int, typer.Option()] = 8501,
    serve: Annotated[bool, typer.Option("--dashboard/--no-dashboard")] = True,
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
    if serve:
        dashboard(port)


def _register_commands() -> None:
    """Import every module of timelines.commands so its commands join the app."""
    import importlib
    import pkgutil

    from timelines import commands

    for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"timelines.commands.{module}")


def main() -> None:
    """Entry point: run the app, turning known errors into one clear line and exit code 2."""
    from pipeline.store.db import DatabaseBusyError

    # A busy 2-core machine can take longer than Prefect's default to start a temporary server.
    default_variable("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    _register_commands()
    try:
        app(standalone_mode=True)
    except (CliError, DatabaseBusyError) as error:
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(2) from None
