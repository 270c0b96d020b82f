"""One settings object: the environment and an optional .env file, read once, loud when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.prepare.anonymize import key_of
from pipeline.settings import load_settings
from pipeline.sources.uscis.client import SettingsError, api_settings_from_env


def test_a_dot_env_file_sets_what_the_environment_does_not(tmp_path: Path) -> None:
    env_file = tmp_path / "local.env"
    env_file.write_text(
        "# local settings\n"
        f"export TIMELINES_HOME='{tmp_path / 'from-file'}'\n"
        "TIMELINES_MIN_GROUP_SIZE=25\n"
        "USCIS_CLIENT_ID=file-id\n"
        "USCIS_CLIENT_SECRET=\"file-secret\"\n"
        "UNRELATED=ignored\n"
    )
    settings = load_settings({"TIMELINES_ENV_FILE": str(env_file), "TIMELINES_MIN_GROUP_SIZE": "12"})
    assert settings.home == tmp_path / "from-file"
    assert settings.min_group_size == 12  # the environment wins over the file
    assert "UNRELATED" not in settings.env
    api = api_settings_from_env(settings.env)
    assert api.client_secret.reveal() == "file-secret"
    assert "file-secret" not in repr(api) + repr(settings)


def test_a_missing_secret_is_an_error_that_names_it() -> None:
    settings = load_settings({"USCIS_CLIENT_ID": "id"})
    with pytest.raises(SettingsError, match="USCIS_CLIENT_SECRET is not set"):
        api_settings_from_env(settings.env)


def test_a_broken_dot_env_line_names_the_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("TIMELINES_HOME=/tmp/x\nthis is not a setting\n")
    with pytest.raises(ValueError, match="line 2: expected NAME=value"):
        load_settings({"TIMELINES_ENV_FILE": str(env_file)})


def test_the_pseudonym_key_comes_from_the_settings_not_the_process(tmp_path: Path) -> None:
    given = load_settings({"TIMELINES_HOME": str(tmp_path), "TIMELINES_PSEUDONYM_KEY": "k" * 64})
    assert key_of(given).secret == b"k" * 64
    assert not given.key_path.exists()  # no key file written when the key is given
    from_file = load_settings({"TIMELINES_HOME": str(tmp_path)})
    assert key_of(from_file).secret == key_of(from_file).secret != b"k" * 64
    assert from_file.key_path.stat().st_mode & 0o777 == 0o600
