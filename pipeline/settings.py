"""One settings object, read once from the environment, with defaults that make the demo work.

`load_settings()` reads the process environment and, for local use, an optional `.env` file
(KEY=VALUE lines; the environment wins; TIMELINES_ENV_FILE names another file). It keeps its
own copy of the variables the program reads, so nothing else ever reads `os.environ`: each area
parses its part of `Settings.env` with a typed reader that names a bad variable
(`api_settings_from_env`, `schedule_from_env`, `schedules_from_env`, ...), and a secret that
is needed but missing is an error, never an empty string.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

DEFAULT_HOME = Path("data")
ENV_FILE = ".env"
# Variables the program reads; a .env file may set only these.
PREFIXES = ("TIMELINES_", "USCIS_", "PREFECT_")


class Secret:
    """Hold a credential so that repr, str and log lines show only asterisks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the credential itself, for the one place that uses it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    __str__ = __repr__


@dataclass(frozen=True)
class SubmissionLimits:
    """How much the public path (Submit page, `timelines submit`) takes, and from whom.

    Each field is read from the variable named beside it (docs/security.md).
    """

    max_cases: int = 6                 # TIMELINES_SUBMIT_MAX_CASES: cases per submission
    per_session: int = 3               # TIMELINES_SUBMIT_PER_SESSION: per browser session, hour
    per_address: int = 6               # TIMELINES_SUBMIT_PER_ADDRESS: per client address, hour
    global_per_hour: int = 120         # TIMELINES_SUBMIT_GLOBAL_PER_HOUR: then operator review
    trusted_proxies: tuple[str, ...] = ()  # TIMELINES_TRUSTED_PROXIES: comma-separated IPs
    max_contributor_share: float = 0.25    # TIMELINES_MAX_CONTRIBUTOR_SHARE of a published group


_LIMIT_VARIABLES = {
    "max_cases": "TIMELINES_SUBMIT_MAX_CASES",
    "per_session": "TIMELINES_SUBMIT_PER_SESSION",
    "per_address": "TIMELINES_SUBMIT_PER_ADDRESS",
    "global_per_hour": "TIMELINES_SUBMIT_GLOBAL_PER_HOUR",
}


def submission_limits_from(values: Mapping[str, str]) -> SubmissionLimits:
    """The submission limits from the program's variables; ValueError names a bad one."""
    found: dict[str, int] = {}
    for name, variable in _LIMIT_VARIABLES.items():
        raw = values.get(variable)
        if raw is None or not raw.strip():
            continue
        try:
            found[name] = int(raw)
        except ValueError as exc:
            raise ValueError(f"{variable} must be a whole number, got {raw!r}") from exc
        if found[name] < 1:
            raise ValueError(f"{variable} must be at least 1, got {found[name]}")
    raw_share = values.get("TIMELINES_MAX_CONTRIBUTOR_SHARE", "").strip()
    share = SubmissionLimits.max_contributor_share
    if raw_share:
        try:
            share = float(raw_share)
        except ValueError as exc:
            raise ValueError(f"TIMELINES_MAX_CONTRIBUTOR_SHARE must be a number, got {raw_share!r}") from exc
        if not 0 < share <= 1:
            raise ValueError(f"TIMELINES_MAX_CONTRIBUTOR_SHARE must be in (0, 1], got {share}")
    proxies = tuple(p.strip() for p in values.get("TIMELINES_TRUSTED_PROXIES", "").split(",")
                    if p.strip())
    return SubmissionLimits(**found, trusted_proxies=proxies, max_contributor_share=share)


@dataclass(frozen=True)
class Settings:
    """Where the program keeps its files, the thresholds it publishes under, its secrets."""

    home: Path
    min_group_size: int = 10
    # A pending case not seen for this many days before the data ends is counted stale.
    stale_after_days: int = 180  # TIMELINES_STALE_AFTER_DAYS
    pseudonym_key: Secret | None = field(default=None, repr=False)  # TIMELINES_PSEUDONYM_KEY
    prefect_api_url: str | None = None  # PREFECT_API_URL: run one-off commands as flows
    limits: SubmissionLimits = field(default_factory=SubmissionLimits)  # TIMELINES_SUBMIT_*
    env: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    @property
    def database_path(self) -> Path:
        """The analytics DuckDB file: only flows open it, one writer at a time."""
        return self.home / "timelines.duckdb"

    @property
    def published_dir(self) -> Path:
        """Read-only snapshots the dashboard reads, swapped in atomically after each flow."""
        return self.home / "published"

    @property
    def key_path(self) -> Path:
        """The secret pseudonym key (0600) unless TIMELINES_PSEUDONYM_KEY is set."""
        return self.home / "pseudonym.key"

    @property
    def inbox_dir(self) -> Path:
        """Anonymized submissions waiting for the ingest flow."""
        return self.home / "inbox"

    @property
    def exports_dir(self) -> Path:
        """Default folder for open-data exports."""
        return self.home / "exports"

    @property
    def lock_path(self) -> Path:
        """Advisory lock that serialises writers of the analytics database."""
        return self.home / "timelines.duckdb.writer-lock"

    def ensure_home(self) -> Path:
        """Create the home folder (and its parents) if it does not exist yet."""
        if not self.home.exists():
            self.home.mkdir(parents=True, mode=0o700)  # it holds the key and the registry
        return self.home


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments, blank lines, `export ` and quotes allowed)."""
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        text = text.removeprefix("export ").strip()
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise ValueError(f"{path} line {number}: expected NAME=value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        if name.startswith(PREFIXES):
            found[name] = value
    return found


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The program's variables: the .env file's, overridden by the environment's."""
    process = dict(os.environ) if env is None else dict(env)
    file = Path(process.get("TIMELINES_ENV_FILE") or ENV_FILE)
    from_file = read_env_file(file) if file.is_file() else {}
    return from_file | {k: v for k, v in process.items() if k.startswith(PREFIXES)}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings once (environment, then .env); ValueError names a bad variable."""
    values = environment(env)
    home = Path(values.get("TIMELINES_HOME") or DEFAULT_HOME).expanduser()
    raw_k = values.get("TIMELINES_MIN_GROUP_SIZE", "10")
    try:
        k = int(raw_k)
    except ValueError as exc:
        raise ValueError(
            f"TIMELINES_MIN_GROUP_SIZE must be a whole number, got {raw_k!r}"
        ) from exc
    if k < 1:
        raise ValueError(f"TIMELINES_MIN_GROUP_SIZE must be at least 1, got {k}")
    raw_stale = values.get("TIMELINES_STALE_AFTER_DAYS", "180")
    try:
        stale = int(raw_stale)
    except ValueError as exc:
        raise ValueError(
            f"TIMELINES_STALE_AFTER_DAYS must be a whole number of days, got {raw_stale!r}"
        ) from exc
    if stale < 1:
        raise ValueError(f"TIMELINES_STALE_AFTER_DAYS must be at least 1, got {stale}")
    key = values.get("TIMELINES_PSEUDONYM_KEY")
    return Settings(
        home=home,
        min_group_size=k,
        stale_after_days=stale,
        pseudonym_key=Secret(key) if key is not None else None,
        prefect_api_url=values.get("PREFECT_API_URL", "").strip() or None,
        limits=submission_limits_from(values),
        env=MappingProxyType(values),
    )


def child_environment(settings: Settings, **overrides: str) -> dict[str, str]:
    """The environment for a child process of ours: this one's, the settings' home, overrides."""
    return dict(os.environ) | {"TIMELINES_HOME": str(settings.home.resolve())} | overrides


def export_variable(name: str, value: str) -> None:
    """Set a variable for libraries that read the environment themselves (Prefect)."""
    os.environ[name] = value


def default_variable(name: str, value: str) -> None:
    """Set a variable for libraries that read the environment, unless it is set already."""
    os.environ.setdefault(name, value)
