from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from rdv.core import env


def test_booleans_are_parsed_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDV_FLAG", "yes")
    assert env.env_bool("RDV_FLAG", default=False) is True
    monkeypatch.setenv("RDV_FLAG", "off")
    assert env.env_bool("RDV_FLAG", default=True) is False
    monkeypatch.setenv("RDV_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env.env_bool("RDV_FLAG", default=False)


def test_integers_are_parsed_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RDV_NUMBER", "12")
    assert env.env_int("RDV_NUMBER", 1) == 12
    monkeypatch.setenv("RDV_NUMBER", "douze")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("RDV_NUMBER", 1)
    monkeypatch.setenv("RDV_NUMBER", "0")
    with pytest.raises(ImproperlyConfigured):
        env.env_int("RDV_NUMBER", 1, minimum=1)


def test_required_setting_without_default_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RDV_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured):
        env.env_str("RDV_REQUIRED")


def test_secret_can_come_from_a_mounted_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("RDV_SECRET_FILE", str(secret))
    monkeypatch.setenv("RDV_SECRET", "ignored")
    assert env.env_str("RDV_SECRET") == "s3cr3t"


def test_env_file_never_overrides_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "local.env"
    path.write_text("# comment\nRDV_A=from-file\nRDV_B=from-file\n")
    monkeypatch.setenv("RDV_A", "from-env")
    monkeypatch.delenv("RDV_B", raising=False)
    env.load_env_file(path)
    assert env.env_str("RDV_A") == "from-env"
    assert env.env_str("RDV_B") == "from-file"
    monkeypatch.delenv("RDV_B")


def test_malformed_env_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "local.env"
    path.write_text("JUST_A_WORD\n")
    with pytest.raises(ImproperlyConfigured):
        env.load_env_file(path)
