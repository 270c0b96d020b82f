"""`timelines submit`, `timelines delete`, `timelines submission-status` and the inbox part
of `timelines ingest --inbox`: community submissions from the command line."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from timelines.app import CliError, app, echo_json, settings

if TYPE_CHECKING:
    from pipeline.jobs.inbox import InboxResult
    from pipeline.prepare.preview import SubmissionPreview

KIND_HELP = ("auto (default), json, case_status_api, myuscis, simplified, egov_csol, "
             "typed_form or csv")


def _read_input(file: Path) -> str:
    """The text of FILE ('-' for standard input), decoded as UTF-8, else Windows-1252."""
    from pipeline.prepare.preview import MAX_CSV_BYTES

    if str(file) == "-":
        data = sys.stdin.buffer.read(MAX_CSV_BYTES + 1)
    else:
        if not file.is_file():
            raise CliError(f"{file} does not exist or is not a file")
        with file.open("rb") as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    from pipeline.prepare.preview import NotUtf8Error, decode_submission

    try:
        return decode_submission(data)
    except NotUtf8Error as error:
        raise CliError(str(error)) from error


def _print_preview(preview: SubmissionPreview) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(110, Console().width))
    if preview.records:
        cases = Table(title="What would be stored (one row per case)")
        for column in ("case", "form", "intake office", "current office", "fiscal year",
                       "received", "premium", "latest stage"):
            cases.add_column(column)
        for row in preview.case_rows():
            cases.add_row(*(str(row[k]) if row[k] is not None else "" for k in (
                "case", "form_type", "intake_office", "current_office", "fiscal_year",
                "received_date", "premium", "latest_stage")))
        console.print(cases)
        events = Table(title="Dated stages that would be stored")
        for column in ("case", "date", "stage", "title"):
            events.add_column(column)
        for row in preview.event_rows()[:200]:
            events.add_row(str(row["case"]), str(row["date"]), str(row["stage"]), str(row["title"]))
        console.print(events)
    for note in preview.notes:
        typer.echo(f"note: {note}")
    for error in preview.errors:
        typer.echo(f"problem: {error}", err=True)


def _preview_json(preview: SubmissionPreview) -> dict[str, Any]:
    return {"kind": preview.kind, "ok": preview.ok, "errors": list(preview.errors),
            "notes": list(preview.notes), "cases": preview.case_rows(),
            "events": preview.event_rows()}


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="A JSON answer, a CSV or a typed 'field: value' "
                                              "file; '-' reads standard input.")],
    consent: Annotated[bool, typer.Option(
        "--consent", help="Agree to the consent text and submit. Without it, only preview.")] = False,
    kind: Annotated[str, typer.Option("--kind", help=KIND_HELP)] = "auto",
    skip_invalid: Annotated[bool, typer.Option(
        "--skip-invalid", help="Submit the valid rows of a CSV and set the others aside.")] = False,
    ingest_now: Annotated[bool, typer.Option(
        "--ingest/--no-ingest", help="Store it right away (default) or leave it to the "
                                     "scheduled inbox flow.")] = True,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Preview a case history, and with --consent submit it; prints the one-time deletion code."""
    from pipeline.inbox.consent import CONSENT_TEXT, CONSENT_VERSION, give_consent
    from pipeline.inbox.folder import SubmissionRefused, write_submission
    from pipeline.prepare.anonymize import key_of
    from pipeline.prepare.preview import KINDS, preview_submission

    if kind not in KINDS:
        raise CliError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if output not in {"table", "json"}:
        raise CliError(f"--format must be table or json, not {output!r}")
    cfg = settings()
    cfg.ensure_home()
    now = datetime.now()
    preview = preview_submission(_read_input(file), kind, key=key_of(cfg), now=now,
                                 max_cases=cfg.limits.max_cases)
    if output == "table":
        _print_preview(preview)
    blocked = not preview.records or (preview.errors and not skip_invalid)
    if blocked:
        if output == "json":
            echo_json(_preview_json(preview))
        hint = " (or --skip-invalid to submit only the valid rows)" if preview.records else ""
        raise CliError(f"nothing was submitted: fix the problems above{hint}")
    if not consent:
        if output == "json":
            echo_json(_preview_json(preview) | {"submitted": False, "consent_text": CONSENT_TEXT,
                                                "consent_version": CONSENT_VERSION})
            return
        typer.echo(f"\nConsent (version {CONSENT_VERSION}):\n{CONSENT_TEXT}\n")
        typer.echo("Nothing was stored. To submit, run the same command with --consent.")
        return
    try:
        submitted = write_submission(cfg.inbox_dir, preview, give_consent(now), now=now,
                                     skip_invalid=skip_invalid)
    except SubmissionRefused as error:
        raise CliError(str(error)) from error
    status_text = _ingest_after(cfg) if ingest_now else None
    from pipeline.inbox.folder import lookup_status

    status = lookup_status(cfg.inbox_dir, submitted.code)
    if output == "json":
        echo_json(_preview_json(preview) | {
            "submitted": True, "submission_id": submitted.submission_id,
            "deletion_code": submitted.code, "state": status.state,
            "reasons": list(status.reasons), "consent_version": CONSENT_VERSION})
        return
    typer.echo(f"\nsubmitted {submitted.n_cases} case(s) as {submitted.submission_id}.")
    typer.echo(f"\n  your deletion code: {submitted.code}\n")
    typer.echo("Keep it: it is shown only this once, and it is the only way to delete this "
               "submission or to look up what happened to it (`timelines submission-status CODE`).")
    if status_text:
        typer.echo(status_text)
    typer.echo(status.describe())
    for reason in status.reasons:
        typer.echo(f"  reason: {reason}")


def _ingest_after(cfg: Any) -> str | None:
    """Process the inbox now; when the database is busy, say the submission is safe."""
    from pipeline.jobs.inbox import process_inbox
    from pipeline.store.db import DatabaseBusyError

    try:
        process_inbox(cfg)
    except DatabaseBusyError:
        return ("the database is busy (a flow is running): your submission is safe in the inbox "
                "and will be stored by the next inbox run (`timelines ingest --inbox`).")
    return None


@app.command()
def delete(
    code: Annotated[str, typer.Argument(help="The deletion code shown when you submitted.")],
    ingest_now: Annotated[bool, typer.Option(
        "--ingest/--no-ingest", help="Delete right away (default) or leave it to the "
                                     "scheduled inbox flow.")] = True,
) -> None:
    """Delete a submission and everything derived from it, then re-publish the statistics."""
    from pipeline.inbox.codes import InvalidCodeError
    from pipeline.inbox.folder import UnknownCodeError, lookup_status, request_deletion

    cfg = settings()
    try:
        status = request_deletion(cfg.inbox_dir, code, datetime.now())
    except (InvalidCodeError, UnknownCodeError) as error:
        raise CliError(str(error)) from error
    if status.state != "deleted" and ingest_now:
        busy = _ingest_after(cfg)
        if busy:
            typer.echo(busy.replace("your submission is safe in the inbox and will be stored",
                                    "the deletion request is queued and will be carried out"))
        status = lookup_status(cfg.inbox_dir, code)
    typer.echo(status.describe())


@app.command("submission-status")
def submission_status(
    code: Annotated[str, typer.Argument(help="The deletion code shown when you submitted.")],
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Look up what happened to a submission (stored, quarantined and why, deleted)."""
    from dataclasses import asdict

    from pipeline.inbox.codes import InvalidCodeError
    from pipeline.inbox.folder import UnknownCodeError, lookup_status

    try:
        status = lookup_status(settings().inbox_dir, code)
    except (InvalidCodeError, UnknownCodeError) as error:
        raise CliError(str(error)) from error
    if output == "json":
        echo_json(asdict(status))
        return
    typer.echo(status.describe())
    for reason in status.reasons:
        typer.echo(f"  reason: {reason}")


def ingest_inbox(output: str, prefect: bool) -> None:
    """Run the inbox job once (for `timelines ingest --inbox`) and print what it did."""
    result: InboxResult
    if prefect:
        from flows.inbox import inbox_flow

        result = inbox_flow()
    else:
        from pipeline.jobs.inbox import process_inbox

        result = process_inbox(settings())
    summary = {
        "deleted": sum(d.found for d in result.deletions),
        "submissions": len(result.stored),
        "stored_cases": sum(s.n_stored for s in result.stored if not s.already_stored),
        "quarantined": sum(s.n_quarantined for s in result.stored if not s.already_stored),
        "unreadable": result.unreadable,
        "published": result.published,
    }
    if output == "json":
        echo_json(summary)
        return
    typer.echo(
        f"inbox: {summary['submissions']} submission(s) processed, {summary['stored_cases']} "
        f"case(s) stored, {summary['quarantined']} quarantined, {summary['deleted']} deleted"
        + (f", {len(result.unreadable)} unreadable file(s) set aside" if result.unreadable else "")
        + ("; statistics re-published" if result.published else "")
    )


@app.command()
def review(
    approve: Annotated[list[str] | None, typer.Option(
        "--approve", help="Let this held submission in (repeatable); 'all' for every one.")] = None,
    reject: Annotated[list[str] | None, typer.Option(
        "--reject", help="Drop this held submission (repeatable).")] = None,
) -> None:
    """List submissions held past the hourly cap of the Submit page, and approve or reject them."""
    from pipeline.inbox.folder import read_envelope, release_held, review_files

    cfg = settings()
    held = review_files(cfg.inbox_dir)
    wanted = [p.stem for p in held] if approve == ["all"] else list(approve or [])
    now = datetime.now()
    for submission_id in wanted:
        if not release_held(cfg.inbox_dir, submission_id, approve=True, now=now):
            raise CliError(f"no held submission {submission_id!r}: see `timelines review`")
        typer.echo(f"approved {submission_id}: it is stored at the next inbox run")
    for submission_id in reject or []:
        if not release_held(cfg.inbox_dir, submission_id, approve=False, now=now):
            raise CliError(f"no held submission {submission_id!r}: see `timelines review`")
        typer.echo(f"rejected {submission_id}: nothing of it is kept")
    if wanted or reject:
        return
    if not held:
        typer.echo("no submissions are waiting for review")
        return
    for path in held:
        envelope = read_envelope(path)
        forms = ", ".join(sorted({r.form_type or "?" for r in envelope.records}))
        typer.echo(f"{envelope.submission_id}  {envelope.submitted_at:%Y-%m-%d %H:%M}  "
                   f"{len(envelope.records)} case(s): {forms}")
