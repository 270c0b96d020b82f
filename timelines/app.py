"""The `timelines` app object and what every command module shares: errors, settings, JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from pipeline.settings import Settings, load_settings

app = typer.Typer(
    name="timelines",
    help="Open, community-run analytics of how long USCIS cases take.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

PrefectOption = Annotated[
    bool,
    typer.Option("--prefect/--in-process",
                 help="Run as a Prefect flow (default: only when PREFECT_API_URL is set)."),
]


class CliError(Exception):
    """An error whose message is all the user needs."""


def settings() -> Settings:
    """Settings from the environment, with a clear error when they are wrong."""
    try:
        return load_settings()
    except ValueError as error:
        raise CliError(str(error)) from error


def use_prefect(flag: bool | None) -> bool:
    """Whether to run through Prefect: forced by flag, else when a server is configured."""
    return settings().prefect_api_url is not None if flag is None else flag


def echo_json(value: Any) -> None:
    """Print JSON for scripts."""
    typer.echo(json.dumps(value, indent=2, default=str))
