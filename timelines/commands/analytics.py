"""`timelines estimate`, `import-official`, `export`, `stages` and `trends`."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timelines.app import CliError, app, echo_json, settings

if TYPE_CHECKING:
    from pipeline.publish.reader import Snapshot

FormatOption = Annotated[str, typer.Option("--format", help="table or json")]


def _check_format(output: str) -> None:
    if output not in {"table", "json"}:
        raise CliError(f"--format must be table or json, not {output!r}")


def _snapshot() -> Snapshot:
    from pipeline.publish.reader import NoSnapshotError, current_snapshot

    try:
        return current_snapshot(settings().published_dir)
    except NoSnapshotError as error:
        raise CliError(str(error)) from error


def _form(raw: str) -> str:
    from pipeline.parse.fields import normalize_form_type

    try:
        form = normalize_form_type(raw)
    except ValueError as error:
        raise CliError(str(error)) from error
    if form is None:
        raise CliError("--form is empty: write it like I-485")
    return form


def _office(raw: str | None) -> str | None:
    from pipeline.parse.offices import office_code

    if raw is None:
        return None
    code = office_code(raw)
    if code is None:
        raise CliError(f"unknown office {raw!r}: use NSC, TSC, VSC, CSC, NBC, PSC or ELIS "
                       "(or the receipt prefix: LIN, SRC, EAC, WAC, MSC, YSC, IOE, the old "
                       "codes SSC, ESC, WSC, or a field office code or city: DAL, Dallas)")
    return code


def _day(raw: str, option: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise CliError(f"{option} must be a date written YYYY-MM-DD, not {raw!r}") from None


def _percent(value: float | None) -> str:
    return "unknown" if value is None else f"{100 * value:.0f}%"


@app.command()
def estimate(
    form: Annotated[str, typer.Option("--form", help="Form type, e.g. I-485.")],
    received: Annotated[str, typer.Option("--received", help="Receipt date, YYYY-MM-DD.")],
    office: Annotated[str | None, typer.Option(
        "--office", help="Office code or receipt prefix, e.g. NBC or MSC.")] = None,
    stage: Annotated[str | None, typer.Option(
        "--stage", help="Where the case is now: biometrics, interview, rfe, rfe_response, "
                        "transferred (or a status title).")] = None,
    today: Annotated[str | None, typer.Option(
        "--today", help="Pretend today is this date (YYYY-MM-DD).")] = None,
    office_basis: Annotated[str, typer.Option(
        "--office-basis", help="intake (receipt prefix) or current office.")] = "intake",
    processing: Annotated[str, typer.Option(
        "--processing", help="Your case's processing: regular or premium (only cases of the "
                             "same type are used).")] = "regular",
    output: FormatOption = "table",
) -> None:
    """Cases like mine: chance of a decision within 30/60/90 days and a likely date range."""
    from pipeline.analytics.estimate import estimate_case

    _check_format(output)
    if office_basis not in {"intake", "current"}:
        raise CliError(f"--office-basis must be intake or current, not {office_basis!r}")
    cfg = settings()
    snapshot = _snapshot()
    try:
        result = estimate_case(
            snapshot.table("durations"), form_type=_form(form), office=_office(office),
            received=_day(received, "--received"), stage=stage,
            today=_day(today, "--today") if today else date.today(),
            min_group_size=cfg.min_group_size, office_basis=office_basis,
            processing=processing,
        )
    except ValueError as error:
        raise CliError(str(error)) from error
    if output == "json":
        echo_json(result.to_dict() | {"synthetic": snapshot.is_synthetic})
        return
    where = f" at {result.office}" if result.office else ""
    typer.echo(f"{result.form_type}{where} ({result.processing} processing), received "
               f"{result.received}, waiting {result.waited_days} days so far")
    if snapshot.is_synthetic:
        typer.echo("SYNTHETIC SAMPLE DATA - not real USCIS cases")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if not result.enough_data:
        return
    typer.echo(f"based on {result.n_cases} cases of the same {result.basis} "
               f"({result.n_pending} still pending); {result.n_at_risk} of them were still "
               f"waiting after {result.waited_days} days")
    for chance in result.chances:
        band = "" if chance.probability is None else \
            f" (95% CI {_percent(chance.ci_low)}-{_percent(chance.ci_high)})"
        typer.echo(f"  decision within {chance.days} days: {_percent(chance.probability)}{band}")
    later = "later" if result.likely_by is None else str(result.likely_by)
    if result.likely_from is not None:
        typer.echo(f"likely decision between {result.likely_from} and {later}"
                   + (f"; half of such cases by {result.median_date}" if result.median_date else ""))


@app.command(name="import-official")
def import_official(
    path: Annotated[Path, typer.Argument(help="USCIS processing-times JSON file or folder.")],
    output: FormatOption = "table",
) -> None:
    """Load official USCIS processing times (months/weeks -> days) to compare with ours."""
    from pipeline.analytics.official import OfficialImportError
    from pipeline.jobs.official import import_official_times

    _check_format(output)
    try:
        result = import_official_times(settings(), path)
    except OfficialImportError as error:
        raise CliError(f"cannot import: {error}") from error
    from pipeline.analytics.official import RANGE_METHODS

    if output == "json":
        echo_json({"answers": result.n_answers, "figures": result.n_figures, "new": result.n_new,
                   "updated": result.n_updated, "unchanged": result.n_unchanged,
                   "skipped": list(result.skipped), "range_methods": dict(result.methods),
                   "unmatched_categories": list(result.unmatched_categories)})
        return
    typer.echo(f"read {result.n_answers} answers with {result.n_figures} figures: "
               f"{result.n_new} new, {result.n_updated} updated, {result.n_unchanged} unchanged")
    for method, count in result.methods:
        typer.echo(f"  {count} figure{'s' if count != 1 else ''}: {RANGE_METHODS[method]}")
    for category in result.unmatched_categories[:10]:
        typer.echo(f"  no community category matches {category}: shown without community figures")
    for reason in result.skipped[:20]:
        typer.echo(f"  skipped {reason}")


@app.command()
def export(
    directory: Annotated[Path, typer.Argument(help="Folder to write the open data into.")],
) -> None:
    """Write the aggregated, suppressed statistics as CSV and Parquet with a data dictionary."""
    from pipeline.publish.export import export_tables

    try:
        result = export_tables(_snapshot(), directory, settings().min_group_size)
    except ValueError as error:
        raise CliError(str(error)) from error
    tables = ", ".join(f"{name} ({rows} rows)" for name, rows in result.n_rows.items())
    typer.echo(f"wrote {len(result.files)} files to {directory}: {tables}; "
               "see data_dictionary.md")


def _print_rows(rows: list[dict[str, Any]], columns: dict[str, str], title: str, k: int) -> None:
    from rich.console import Console
    from rich.table import Table

    if not rows:
        typer.echo("no statistics match these filters")
        return
    table = Table(title=title)
    for header in columns.values():
        table.add_column(header)
    for row in rows:
        if row.get("suppressed"):
            keys = [str(row[c] if row[c] is not None else "all") for c in columns
                    if c in {"segment", "form_type", "office", "processing", "decision_month"}]
            table.add_row(*keys, f"too few (< {k})", *[""] * (len(columns) - len(keys) - 1))
            continue
        table.add_row(*[
            "all" if row[c] is None and c == "office" else
            "not yet" if row[c] is None else
            f"{row[c]:.0f}" if isinstance(row[c], float) and c.endswith("days") else
            f"{100 * row[c]:.0f}%" if isinstance(row[c], float) else str(row[c])
            for c in columns
        ])
    Console(width=max(120, Console().width)).print(table)


ProcessingOption = Annotated[str | None, typer.Option(
    "--processing", help="regular, premium, or any (both pooled). Default: a regular and a "
                         "premium row per group, never pooled.")]


def _published_rows(table: str, form: str | None, office: str | None, sort: list[str],
                    processing: str | None = None) -> Any:
    import polars as pl

    from pipeline.publish.export import public_table

    if processing not in {None, "regular", "premium", "any"}:
        raise CliError(f"--processing must be regular, premium or any, not {processing!r}")
    snapshot = _snapshot()
    if not (snapshot.path / f"{table}.parquet").exists():
        raise CliError("the published statistics predate this version: run `timelines refresh`")
    frame = public_table(snapshot, table, settings().min_group_size)
    if "processing" not in frame.columns:
        raise CliError("the published statistics predate processing types: run "
                       "`timelines refresh`")
    if form:
        frame = frame.filter(pl.col("form_type") == _form(form))
    if office:
        frame = frame.filter(pl.col("office") == _office(office))
    wanted = ["regular", "premium"] if processing is None else [processing]
    frame = frame.filter(pl.col("processing").is_in(wanted))
    return frame.drop("computed_at").sort([*sort, "processing"], nulls_last=True).to_dicts()


def _stale_note(rows: list[dict[str, Any]]) -> None:
    from pipeline.publish.stats_view import stale_notice

    notice = stale_notice(rows, settings().stale_after_days)
    if notice:
        typer.echo(f"note: {notice}")


@app.command()
def stages(
    form: Annotated[str | None, typer.Option("--form", help="Form type, e.g. I-485.")] = None,
    office: Annotated[str | None, typer.Option("--office", help="Intake office.")] = None,
    processing: ProcessingOption = None,
    output: FormatOption = "table",
) -> None:
    """Stage-to-stage times: receipt -> biometrics -> interview, RFE -> response -> decision."""
    _check_format(output)
    rows = _published_rows("stage_stats", form, office, ["form_type", "office", "segment"],
                           processing)
    if output == "json":
        echo_json(rows)
        return
    _print_rows(rows, {"form_type": "form", "office": "office", "processing": "processing",
                       "segment": "from -> to", "n_cases": "cases", "n_pending": "still waiting",
                       "median_days": "median days", "p80_days": "80th pct", "p90_days": "90th pct"},
                "Days between stages (Kaplan-Meier; cases still waiting count as censored)",
                settings().min_group_size)
    _stale_note(rows)


@app.command()
def trends(
    form: Annotated[str | None, typer.Option("--form", help="Form type, e.g. I-485.")] = None,
    office: Annotated[str | None, typer.Option("--office", help="Intake office.")] = None,
    processing: ProcessingOption = None,
    output: FormatOption = "table",
) -> None:
    """Per decision month: cases decided, how long they took, cases still pending at month end."""
    _check_format(output)
    rows = _published_rows("decision_trends", form, office,
                           ["form_type", "office", "decision_month"], processing)
    if output == "json":
        echo_json(rows)
        return
    _print_rows(rows, {"form_type": "form", "office": "office", "processing": "processing",
                       "decision_month": "month",
                       "n_decided": "decided", "median_days": "median days",
                       "p80_days": "80th pct", "approval_rate": "approved",
                       "n_pending_end": "pending at month end"},
                "Cases decided per month (days of the cases decided that month)",
                settings().min_group_size)
