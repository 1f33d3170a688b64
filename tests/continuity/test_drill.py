"""The restore drill drops its database: it must never take the main one for a scratch one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from rdv.continuity.management.commands.drill import Drill

pytestmark = pytest.mark.django_db


def test_the_main_sqlite_file_is_refused_however_it_is_written(settings: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite spelling of the main database")
    main = Path(settings.DATABASES["default"]["NAME"])
    roundabout = main.parent / "." / ".." / main.parent.name / main.name
    with pytest.raises(CommandError, match="is the main database"):
        call_command("drill", "--database-url", f"sqlite:///{roundabout}")
    assert main.exists()


def test_the_main_postgresql_database_is_refused_under_another_host_name(settings: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL spelling of the main database")
    db = settings.DATABASES["default"]
    # The same server named otherwise than the settings do, the port written out.
    host = "localhost" if db["HOST"] in ("127.0.0.1", "") else "127.0.0.1"
    url = f"postgres://{db['USER']}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    with pytest.raises(CommandError, match="is the main database"):
        call_command("drill", "--database-url", url)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")  # still there


def test_the_drill_never_runs_in_production(settings: Any) -> None:
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="production"):
        call_command("drill", "--database-url", "sqlite:////tmp/rdv-drill-refused.sqlite3")


def test_credential_files_cannot_point_the_drill_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A NAME_FILE variable wins over NAME in our settings: the steps must not inherit one."""
    real = tmp_path / "database-url"
    real.write_text("postgres://rdv@db.internal/rdv")
    monkeypatch.setenv("DATABASE_URL_FILE", str(real))
    monkeypatch.setenv("BACKUP_DIR_FILE", str(real))
    drill = Drill(f"sqlite:///{tmp_path / 'scratch.sqlite3'}", say=print)
    assert "DATABASE_URL_FILE" not in drill.env
    assert "BACKUP_DIR_FILE" not in drill.env
    assert drill.env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
