"""Hermetic tests: every test gets an empty TIMELINES_HOME and none of the caller's settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.settings import Settings, load_settings
from pipeline.sources.uscis.emulator import EmulatorConfig, EmulatorServer

READ_BY_THE_CODE = ("TIMELINES_", "USCIS_", "PREFECT_API_URL", "PREFECT_PROFILE")
REPO = Path(__file__).resolve().parent.parent
REFERENCE_PAYLOADS = REPO / "tests" / "fixtures" / "payloads"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Clear the variables the code reads and point TIMELINES_HOME at an empty folder."""
    for name in list(os.environ):
        if name.startswith(READ_BY_THE_CODE):
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("TIMELINES_HOME", str(home))
    monkeypatch.setenv("TIMELINES_ENV_FILE", str(tmp_path / "no.env"))  # not the checkout's .env
    return home


@pytest.fixture
def settings(clean_environment: Path) -> Settings:
    """Settings for the per-test TIMELINES_HOME."""
    return load_settings()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One temporary Prefect server for the whole session, with its home in a temp folder.

    Tests that run real flows request this fixture; it costs ~20 s once per session.
    """
    prefect_home = tmp_path_factory.mktemp("prefect-home")
    os.environ["PREFECT_HOME"] = str(prefect_home)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


StartEmulator = Callable[..., EmulatorServer]


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators on free ports in background threads; stop them after the test."""
    servers: list[EmulatorServer] = []

    def start(**config: Any) -> EmulatorServer:
        # Spike arrest smooths the rate into slots: a test that does not pace its own raw
        # requests must not trip it, so the rate is high unless the test is about it.
        config.setdefault("requests_per_second", 1000)
        server = EmulatorServer(EmulatorConfig(**config)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the Prefect server, so `make test-fast` can leave them out."""
    for item in items:
        if "prefect_harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.prefect)
