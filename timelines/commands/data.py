"""`timelines sample`, `ingest` and `refresh`: data into the store and statistics out."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

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
            from flows.progress import ingest_progress

            result = ingest_job.ingest(cfg, paths, as_of=day, columns=column_map,
                                       on_progress=ingest_progress(lambda line: typer.echo(line, err=True)))
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
        "rejections_listed": len(result.rejections),  # the first ones; all are in quarantine
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
    if result.n_stale:
        typer.echo(f"note: {result.n_stale} pending cases had not been seen for more than "
                   f"{cfg.stale_after_days} days before the data ends; they count as waiting "
                   "only until they were last seen")
