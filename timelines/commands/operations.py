"""Operating a deployment: `timelines backup`, `restore`, `export-lake` and `serve`."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from timelines.app import CliError, app, echo_json, settings

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
    from pipeline.jobs.backup import BackupError, create_backup

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


@app.command(name="export-lake")
def export_lake(
    target: Annotated[Path, typer.Argument(help="Folder for the partitioned Parquet files.")],
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Write the statistics' inputs as hive-partitioned Parquet (case-level: keep it private)."""
    from pipeline.jobs.lake import export_lake_job

    counts = export_lake_job(settings(), target)
    if output == "json":
        echo_json(counts)
        return
    typer.echo(
        f"wrote {counts.get('cases', 0):,} cases, {counts.get('status_events', 0):,} events and "
        f"{counts.get('case_observations', 0):,} observations to {target} "
        "(case-level rows: an operator's store, not open data)"
    )


@app.command()
def restore(
    source: Annotated[Path, typer.Argument(help="A folder written by `timelines backup`.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Replace the stores of a TIMELINES_HOME that is not empty (the present "
                        "files are moved to a replaced-<time> folder, not deleted).")] = False,
) -> None:
    """Verify a backup's checksums, restore it into TIMELINES_HOME and publish a snapshot."""
    from pipeline.jobs.backup import BackupError, restore_backup

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


@app.command()
def serve(
    port: Annotated[int, typer.Option(
        help="Port of the local Prefect server started when PREFECT_API_URL is not set.")] = 4200,
) -> None:
    """Run the schedules (poll daily, inbox every 5 minutes, refresh hourly) until stopped."""

    cfg = settings()
    cfg.ensure_home()
    from pipeline.settings import export_variable

    given = cfg.prefect_api_url
    api_url = given or f"http://127.0.0.1:{port}/api"
    export_variable("PREFECT_API_URL", api_url)  # before Prefect is imported: it reads it once

    from flows.schedules import ScheduleError, build_deployments, schedules_from_env, served

    try:
        schedules = schedules_from_env()
        deployments = build_deployments(schedules)
    except ScheduleError as error:
        raise CliError(str(error)) from error
    early = EarlyStop()  # from here on a signal stops the command, and the server it starts
    server = None
    try:
        if not prefect_api_ready(api_url):
            if given:
                raise CliError(
                    f"no Prefect server answers at PREFECT_API_URL={given}: start it, or unset "
                    "PREFECT_API_URL and `timelines serve` starts a local one"
                )
            server = start_prefect_server(cfg.home / "prefect", port, api_url, early)
        if early.asked:
            return
        ui = api_url.removesuffix("/api")
        typer.echo(f"serving {len(deployments)} deployments (times in {schedules[0].timezone}):")
        for deployment in deployments:
            crons = [s.schedule.cron for s in deployment.schedules or []]
            when = ", ".join(str(c) for c in crons) or "no schedule"
            name = f"{deployment.flow_name}/{deployment.name}"
            typer.echo(f"  {name:<42} {when:<16} {deployment.description or ''}")
        typer.echo(f"runs, logs and schedules: the Prefect UI at {ui}   (Ctrl+C stops)")
        run_until_stopped(deployments, cfg.home, served(deployments), early)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        typer.echo("stopped: the schedules are paused until `timelines serve` runs again")


class EarlyStop:
    """Remembers a SIGTERM or SIGINT that comes before the runner listens for them.

    A second one stops at once (a start-up that hangs can still be interrupted).
    """

    def __init__(self) -> None:
        import signal

        self.asked = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._heard)

    def _heard(self, signum: int, _frame: object) -> None:
        if self.asked:
            raise SystemExit(128 + signum)
        self.asked = True


def run_until_stopped(deployments: list[Any], home: Path, described: list[Any],
                      early: EarlyStop) -> None:
    """Serve the deployments, beating the heartbeat, until SIGTERM or SIGINT; then stop cleanly.

    Prefect's own `serve` stops on SIGTERM from a signal handler that cannot await the
    runner's stop ("coroutine 'Runner.astop' was never awaited"); here the event loop
    handles both signals and awaits the stop, which pauses the schedules.
    """
    import asyncio
    import signal
    from datetime import datetime

    from prefect.runner import Runner

    from pipeline.publish.heartbeat import HEARTBEAT_SECONDS, write_heartbeat

    async def main() -> None:
        runner = Runner(pause_on_shutdown=True)
        for deployment in deployments:
            await runner.aadd_deployment(deployment)
        started_at = datetime.now()
        running = asyncio.ensure_future(runner.start())
        await asyncio.sleep(0)  # start() installs its own SIGTERM handler first: replace it
        loop = asyncio.get_running_loop()
        asked = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, asked.set)
        if early.asked:
            asked.set()
        heard = loop.create_task(asked.wait())
        stopping: asyncio.Task[None] | None = None
        asked_at = 0.0
        try:
            # A signal that comes while the runner starts waits for it: only a started runner
            # pauses its schedules when it stops (cancelling the start would leave them active)
            while not running.done():
                if asked.is_set() and not asked_at:
                    asked_at = loop.time()
                if asked.is_set() and runner.started and stopping is None:
                    stopping = loop.create_task(runner.astop())
                elif asked.is_set() and stopping is None and loop.time() - asked_at > 120:
                    running.cancel()  # it never started: nothing was served
                if runner.started and not asked.is_set():
                    write_heartbeat(home, described, datetime.now(), started_at)
                waits: set[asyncio.Future[Any]] = {running} if asked.is_set() else {running, heard}
                ready = runner.started or stopping is not None
                await asyncio.wait(waits, timeout=HEARTBEAT_SECONDS if ready else 0.1,
                                   return_when=asyncio.FIRST_COMPLETED)
            if stopping is not None:
                await stopping
            with contextlib.suppress(asyncio.CancelledError):
                await running
        finally:
            heard.cancel()
            write_heartbeat(home, described, datetime.now(), started_at, stopped=True)

    asyncio.run(main())


def prefect_api_ready(api_url: str) -> bool:
    """Whether a Prefect server answers its health check at this API address."""
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def start_prefect_server(prefect_home: Path, port: int, api_url: str,
                         early: EarlyStop | None = None) -> subprocess.Popen[bytes]:
    """Start `prefect server start` on 127.0.0.1 with its state in TIMELINES_HOME/prefect;
    stop waiting for it when `early` hears a signal (the caller then stops it)."""
    import shutil
    import sys
    import time

    prefect_home.mkdir(parents=True, exist_ok=True)
    exe = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    log_path = prefect_home / "server.log"
    typer.echo(f"starting a local Prefect server on port {port} (log: {log_path}) ...")
    from pipeline.settings import child_environment

    env = child_environment(settings(), PREFECT_HOME=str(prefect_home))
    env.pop("PREFECT_API_URL", None)
    with log_path.open("ab") as log:
        # its own session: a Ctrl+C or SIGTERM to this group must not stop the server before
        # the runner has paused the deployments through it; this command stops it last
        server = subprocess.Popen([exe, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    deadline = time.monotonic() + 180
    try:
        while not prefect_api_ready(api_url) and not (early is not None and early.asked):
            if server.poll() is not None or time.monotonic() > deadline:
                raise CliError(f"the Prefect server did not start; see {log_path}")
            time.sleep(0.5)
    except BaseException:  # not started, or stopped (a second Ctrl+C) while it started
        server.kill()
        server.wait()
        raise
    return server


@app.command("rotate-key")
def rotate_key(
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the pseudonym key, re-keying every case whose receipt is tracked."""
    from pipeline.jobs.rekey import RekeyError
    from pipeline.jobs.rekey import rotate_key as rotate

    cfg = settings()
    if not yes:
        typer.confirm(
            "Rotate the pseudonym key? Cases whose receipt is tracked move to the new key; cases "
            "known only from submissions keep their old pseudonym and a later copy of the same "
            "receipt would count as a new case. Stop `timelines serve` and make a backup first. "
            "Go on?", abort=True,
        )
    try:
        result = rotate(cfg)
    except RekeyError as error:
        raise CliError(f"cannot rotate the key: {error}") from error
    typer.echo(f"new pseudonym key in {cfg.key_path}; {result.n_rekeyed} case(s) re-keyed")
    if result.n_kept:
        typer.echo(f"{result.n_kept} case(s) known only from submissions keep their old pseudonym "
                   "(no receipt number is stored for them)")
    typer.echo(f"the old key is kept in {result.retired_key} (0600): make a new backup now "
               "(`timelines backup DIR`), then delete it; older backups still hold the old key")
