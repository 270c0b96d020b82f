"""Choices and help groups of the `timelines` command, applied in one place.

Options that take one of a few values (--format, --office, --by, --office-basis, --form) get
a click type that lists them in --help and refuses anything else with exit code 2 and the
valid choices, instead of "no statistics match". Commands are grouped in --help by who runs
them. Applied to the click command Typer builds, so each command module stays as it is.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any, Literal

import typer

from pipeline.parse.errors import ParseError
from pipeline.parse.forms import COMMON_FORMS, known_form_type
from pipeline.receipts import OFFICES

PANELS: dict[str, tuple[str, ...]] = {
    "For applicants": ("estimate", "submit", "submission-status", "delete", "track"),
    "Data and statistics": ("stats", "stages", "trends", "export", "dashboard", "demo",
                            "sample", "ingest", "refresh", "import-official"),
    "For operators": ("serve", "poll", "emulator", "backup", "restore", "rotate-key",
                      "export-lake", "review"),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "--format": ("table", "json"),
    "--by": ("office", "cohort", "form", "form-cohort", "category", "form-category"),
    "--processing": ("regular", "premium", "any"),
    "--office-basis": ("intake", "current"),
}


def parse_form(value: str) -> str:
    """A USCIS form type such as I-485 (i485 and I 485 are read too), or a usage error."""
    try:
        form = known_form_type(value)
    except ParseError as error:
        raise typer.BadParameter(str(error)) from None
    if form is None:
        raise typer.BadParameter(f"give a form type such as {', '.join(COMMON_FORMS)}")
    return form


def apply_choices(group: Any) -> Any:
    """Give every command's options their choices, and every command its help panel."""
    panel_of = {name: panel for panel, names in PANELS.items() for name in names}
    for name, command in group.commands.items():
        if name in panel_of:
            command.rich_help_panel = panel_of[name]
        _apply(command)
    return group


def _apply(command: Any) -> None:
    for sub in getattr(command, "commands", {}).values():
        _apply(sub)
    for param in command.params:
        descriptor = getattr(param, "type_descriptor", None)
        flag = next((o for o in getattr(param, "opts", []) if o.startswith("--")), "")
        if descriptor is None or param.param_type_name != "option":
            continue
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # an on/off flag takes no value: no "<bool>" in --help
            continue
        choices = CHOICES.get(flag) or (OFFICES if flag == "--office" else None)
        if choices is not None:
            info = copy.copy(descriptor.parameter_info)
            info.case_sensitive = flag != "--office"
            param.type_descriptor = replace(descriptor, annotation=Literal[choices],  # type: ignore[valid-type]
                                            parameter_info=info)
        elif flag == "--form" and descriptor.parameter_info.parser is None:
            info = copy.copy(descriptor.parameter_info)
            info.parser = parse_form
            param.type_descriptor = replace(descriptor, parameter_info=info)
            param.metavar = "<" + "|".join(COMMON_FORMS[:4]) + "|...>"
