"""Operating a deployment: `timelines backup`, `timelines restore` and `timelines serve`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from timelines.cli import CliError, app, echo_json, settings

KEY_WARNING = (
    "WARNING: this backup contains the secret pseudonym key (pseudonym.key). With it, anyone "
    "holding the backup can test whether a receipt number is in the data, and the registry "
    "file in it lists tracked receipt numbers. Keep the backup as safe as the server itself: "
    "encrypted storage, readable by the operator only (the files are written 0600)."
)


@app.command()
def backup(
    target: Annotated[Path, typer.Argument(help="A new or empty folder to write the backup into.")],
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Back up the database, the registry, the inbox and the pseudonym key, with checksums."""
    from pipeline.backup import BackupError, create_backup

    cfg = settings()
    try:
        manifest = create_backup(cfg, target)
    except BackupError as error:
        raise CliError(f"cannot back up: {error}") from error
    if output == "json":
        echo_json(manifest.to_json())
        return
    size = sum(manifest.sizes.values()) / 2**20
    typer.echo(
        f"backed up {cfg.home} to {target}: {len(manifest.files)} files, {size:,.1f} MB, schema "
        f"version {manifest.schema_version}, {manifest.counts.get('cases', 0):,} cases; "
        "checksums in manifest.json"
    )
    if manifest.key_included:
        typer.echo(KEY_WARNING, err=True)
    else:
        typer.echo(
            "note: the pseudonym key comes from TIMELINES_PSEUDONYM_KEY and is NOT in this backup; "
            "keep it with the backup (a restore needs it)", err=True,
        )


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A folder written by `timelines backup`.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the stores of a TIMELINES_HOME that is not empty (the present "
                        "files are moved to a replaced-<time> folder, not deleted).")] = False,
) -> None:
    """Verify a backup's checksums, restore it into TIMELINES_HOME and publish a snapshot."""
    from pipeline.backup import BackupError, restore_backup

    cfg = settings()
    try:
        result = restore_backup(cfg, source, force=force)
    except BackupError as error:
        raise CliError(f"cannot restore: {error}") from error
    manifest = result.manifest
    typer.echo(
        f"restored the backup of {manifest.created_at} into {cfg.home}: "
        f"{', '.join(result.restored)}; checksums verified"
    )
    if result.migrations_applied:
        typer.echo(f"upgraded its schema from version {manifest.schema_version}: "
                   f"{', '.join(result.migrations_applied)}")
    if result.moved_aside is not None:
        pending = list((result.moved_aside / "inbox" / "pending").glob("*.json"))
        typer.echo(f"the files that were there are in {result.moved_aside}")
        if pending:
            typer.echo(
                f"  {len(pending)} submission(s) were waiting there: move them into "
                f"{cfg.inbox_dir / 'pending'} to store them", err=True,
            )
    typer.echo(f"published a fresh snapshot for the dashboard ({result.published.name})")
