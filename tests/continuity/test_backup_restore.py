"""Backups round-trip every table; a damaged, foreign or mismatched archive is refused;
a failed backup is loud (status file, operator email, non-zero exit).

The restore runs as the real command in its own process, against a second, empty
database, as an operator would run it on the day.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import sqlite3
import subprocess  # nosec B404
import sys
from collections.abc import Iterator
from contextlib import closing
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from psycopg import sql

from rdv.audit import services as audit
from rdv.audit.models import AuditEntry
from rdv.continuity import backup, status
from rdv.continuity.archive import read_archive, write_archive
from rdv.continuity.retention import archive_name, list_archives
from rdv.scheduling import services as scheduling
from tests.conftest import Api, Cast, local, make_slot

pytestmark = pytest.mark.django_db(transaction=True)

KEY = "t1:" + base64.urlsafe_b64encode(bytes(range(32))).decode()
OTHER_KEY = "t2:" + base64.urlsafe_b64encode(bytes(range(32, 64))).decode()


@pytest.fixture(autouse=True)
def backup_settings(settings: Any, tmp_path: Path) -> None:
    settings.BACKUP_ENCRYPTION_KEYS = [KEY]
    settings.BACKUP_DIR = tmp_path / "backups"
    settings.BACKUP_COPY_DIR = str(tmp_path / "offsite")
    settings.OPERATOR_EMAILS = ["ops@example.test"]


def story(cast: Cast) -> None:
    """Marie books, cancels and books again; Paul books and signs in with a wrong
    password: appointments, audit entries, outbox messages, card claims."""
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    third = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    appointment = scheduling.book_appointment(user=cast.marie, slot_id=first.pk)
    scheduling.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    scheduling.book_appointment(user=cast.marie, slot_id=second.pk)
    scheduling.book_appointment(user=cast.paul, slot_id=third.pk)
    Api(language="en").post("/auth/token", {"email": "paul@example.test", "password": "nope"})
    audit.seal_pending()


# --- Databases: the test database is the source, a scratch one the target ----------------


@pytest.fixture
def target(tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database beside the test database (dropped afterwards)."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    db = connection.settings_dict
    name = f"{db['NAME']}_restore"
    maintenance("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)
    maintenance("CREATE DATABASE {}", name)
    try:
        yield f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{name}"
    finally:
        maintenance("DROP DATABASE IF EXISTS {} WITH (FORCE)", name)


def maintenance(statement: str, name: str) -> None:
    with backup.postgres_connect(connection.settings_dict, dbname="postgres") as conn:
        conn.autocommit = True
        conn.execute(sql.SQL(statement).format(sql.Identifier(name)))


def raw_connect(url: str) -> Any:
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"))
    return backup.postgres_connect(connection.settings_dict, dbname=url.rsplit("/", 1)[1])


def source_url() -> str:
    name = connection.settings_dict["NAME"]
    return f"sqlite:///{name}" if connection.vendor == "sqlite" else f"postgres:///{name}"


def table_contents(url: str) -> dict[str, tuple[int, str]]:
    """Every table's row count and a digest of all its rows (order-independent)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    contents = {}
    with closing(raw_connect(url)) as conn:
        cursor = conn.cursor()
        quote = connection.ops.quote_name
        for table in sorted(connection.introspection.table_names(cursor)):
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608  # nosec B608
            rows = sorted(repr(row) for row in cursor.fetchall())
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            contents[table] = (len(rows), digest)
    return contents


def restore_process(
    archive: Path, target_url: str, key: str = KEY, backup_dir: Path | None = None
) -> subprocess.Popen[str]:
    """`manage.py restore` as an operator runs it, against the target database."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=target_url,
        BACKUP_DIR=str(backup_dir or settings.BACKUP_DIR),
        BACKUP_ENCRYPTION_KEYS=key,
        AUDIT_ANCHOR_PATH=str(settings.AUDIT_ANCHOR_PATH),
    )
    return subprocess.Popen(  # noqa: S603  # nosec B603
        [sys.executable, str(settings.BASE_DIR / "manage.py"), "restore", str(archive)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def restore(archive: Path, target_url: str) -> subprocess.CompletedProcess[str]:
    process = restore_process(archive, target_url)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def take_backup() -> Path:
    call_command("backup", stdout=StringIO())
    (archive,) = list_archives(Path(settings.BACKUP_DIR)).values()
    return archive


# --- Round trip ---------------------------------------------------------------------------


def test_backup_then_restore_round_trips_every_table(cast: Cast, target: str) -> None:
    story(cast)
    archive = take_backup()
    source = table_contents(source_url())

    result = restore(archive, target)

    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout
    assert table_contents(target) == source
    filled = {table for table, (count, _) in source.items() if count}
    assert {
        "audit_auditentry",
        "scheduling_appointment",
        "notifications_message",
        "patients_patient",
        "django_migrations",
    } <= filled
    assert len(filled) >= 15


def test_the_archive_is_encrypted_copied_and_described_by_its_manifest(
    cast: Cast, tmp_path: Path
) -> None:
    story(cast)
    archive = take_backup()

    backups = Path(settings.BACKUP_DIR)
    copy = Path(settings.BACKUP_COPY_DIR) / archive.name
    # Only the archive stays: the plain dump and manifest were removed (".lock" is the
    # empty file one run at a time locks).
    assert sorted(p.name for p in backups.iterdir()) == sorted(
        [archive.name, f"{archive.name}.sha256", "status.json", ".lock"]
    )
    assert (backups / ".lock").stat().st_size == 0
    assert copy.read_bytes() == archive.read_bytes()
    assert (copy.parent / f"{archive.name}.sha256").is_file()
    assert b"GMF Laval" not in archive.read_bytes()
    assert status.read_status().last_archive == archive.name
    assert status.read_status().consecutive_failures == 0
    call_command("verify_backup", str(copy), stdout=StringIO())

    members = read_archive(archive, backup.backup_keys(), tmp_path)
    manifest = json.loads(members["manifest.json"].read_text())
    head = AuditEntry.objects.order_by("-seq").first()
    assert head is not None
    assert manifest["vendor"] == connection.vendor
    assert manifest["audit_head"] == {"seq": head.seq, "hash": head.hash}
    assert manifest["tables"]["scheduling_appointment"] == 3
    assert set(manifest["tables"]) == set(connection.introspection.table_names())
    assert manifest["schema"]["latest"]["continuity"].startswith("0001")
    assert manifest["dump"]["sha256"] == backup.file_sha256(members[manifest["dump"]["member"]])


def test_retention_prunes_old_archives_in_both_places_after_a_backup(
    cast: Cast, settings: Any
) -> None:
    settings.BACKUP_KEEP_LAST = 1
    settings.BACKUP_KEEP_DAILY = 0
    settings.BACKUP_KEEP_MONTHLY = 0
    old = archive_name(local(2026, 1, 5, 3, 0))
    for directory in (Path(settings.BACKUP_DIR), Path(settings.BACKUP_COPY_DIR)):
        directory.mkdir(parents=True)
        (directory / old).write_bytes(b"old")
        (directory / f"{old}.sha256").write_text("old")
        (directory / "keep-me.txt").write_text("not ours")

    archive = take_backup()

    for directory in (Path(settings.BACKUP_DIR), Path(settings.BACKUP_COPY_DIR)):
        names = {p.name for p in directory.iterdir()}
        assert old not in names
        assert f"{old}.sha256" not in names
        assert {archive.name, f"{archive.name}.sha256", "keep-me.txt"} <= names


# --- Refusals -----------------------------------------------------------------------------


def rewrite_checksum(archive: Path) -> None:
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    archive.with_name(f"{archive.name}.sha256").write_text(f"{digest}  {archive.name}\n")


def flip_a_byte(archive: Path) -> None:
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))


DAMAGES = {
    # what is done to the archive, the key the restore has, what it must answer
    "flip": ("flip", KEY, "checksum mismatch"),
    "flip+checksum": ("flip+checksum", KEY, "corrupt archive"),
    "truncate+checksum": ("truncate+checksum", KEY, "truncated archive"),
    "other key": ("", OTHER_KEY, "wrong key"),
}


def damaged_copy(archive: Path, directory: Path, damage: str) -> Path:
    directory.mkdir()
    copy = directory / archive.name
    copy.write_bytes(archive.read_bytes())
    rewrite_checksum(copy)
    if damage.startswith("flip"):
        flip_a_byte(copy)
    if damage.startswith("truncate"):
        copy.write_bytes(copy.read_bytes()[:-100])
    if damage.endswith("+checksum"):
        rewrite_checksum(copy)
    return copy


def test_restore_refuses_damaged_or_foreign_archives_and_leaves_the_target_empty(
    cast: Cast, target: str, tmp_path: Path
) -> None:
    story(cast)
    archive = take_backup()
    # Each is refused before the target is touched, so they may all run at once, each with
    # its own BACKUP_DIR (runs sharing one take turns: a second is refused at once).
    running = {
        name: restore_process(
            damaged_copy(archive, tmp_path / f"case{i}", damage),
            target,
            key,
            backup_dir=tmp_path / f"case{i}" / "work",
        )
        for i, (name, (damage, key, _)) in enumerate(DAMAGES.items())
    }

    for name, process in running.items():
        _, stderr = process.communicate(timeout=120)
        assert process.returncode != 0, name
        assert f"Restore refused: {DAMAGES[name][2]}" in stderr, name
        assert len(stderr.strip().splitlines()) == 1, stderr
    assert table_contents(target) == {}


def test_restore_refuses_a_manifest_the_data_does_not_match_and_leaves_the_target_empty(
    cast: Cast, target: str, tmp_path: Path
) -> None:
    story(cast)
    table = "clinics_clinic"
    members = read_archive(take_backup(), backup.backup_keys(), tmp_path)
    manifest = json.loads(members["manifest.json"].read_text())
    count = manifest["tables"][table]
    manifest["tables"][table] = count + 1
    members["manifest.json"].write_text(json.dumps(manifest))
    forged = tmp_path / "forged" / archive_name(local(2026, 11, 23, 9, 0))
    forged.parent.mkdir()
    write_archive(forged, list(members.items()), backup.backup_keys()[0])

    result = restore(forged, target)

    assert result.returncode != 0
    assert "restored data does not match the manifest" in result.stderr
    assert f"table {table} has {count} rows, the manifest says {count + 1}" in result.stderr
    assert table_contents(target) == {}


def test_restore_refuses_a_database_that_is_not_empty(cast: Cast, target: str) -> None:
    story(cast)
    archive = take_backup()
    with closing(raw_connect(target)) as conn:
        conn.execute("CREATE TABLE notes (id integer)")
        conn.commit()

    result = restore(archive, target)

    assert result.returncode != 0
    assert "target database is not empty" in result.stderr
    assert table_contents(target) == {"notes": (0, hashlib.sha256(b"").hexdigest())}


# --- Failures are loud --------------------------------------------------------------------


def break_the_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The database goes away between the audit seal and the snapshot."""
    if connection.vendor == "sqlite":
        monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "gone.sqlite3"))
    else:
        monkeypatch.setitem(connection.settings_dict, "PORT", "1")


def test_a_backup_of_an_unreachable_database_fails_loudly(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    break_the_database(monkeypatch, tmp_path)

    with pytest.raises(CommandError, match=r"^Backup failed: ") as failure:
        call_command("backup")

    assert "\n" not in str(failure.value)
    monkeypatch.undo()
    state = status.read_status()
    assert (state.failures_total, state.consecutive_failures) == (1, 1)
    assert state.last_success_at is None
    assert list_archives(Path(settings.BACKUP_DIR)) == {}
    assert sorted(p.name for p in Path(settings.BACKUP_DIR).iterdir()) == [".lock", "status.json"]
    (message,) = mail.outbox
    assert message.to == ["ops@example.test"]
    assert "Backup FAILED" in message.subject
    assert state.last_error in message.body


@pytest.mark.postgres_only
def test_a_backup_without_pg_dump_fails_loudly_and_counts(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("pg_dump is only used on PostgreSQL")
    take_backup()
    monkeypatch.setattr(backup, "PG_DUMP", "pg_dump-not-installed")

    with pytest.raises(CommandError, match="pg_dump-not-installed was not found"):
        call_command("backup")

    state = status.read_status()
    assert (state.failures_total, state.consecutive_failures) == (1, 1)
    assert state.last_success_at is not None
    assert len(mail.outbox) == 1


def test_a_mail_failure_does_not_hide_the_backup_failure(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_mail_server(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(backup, "send_mail", no_mail_server)
    break_the_database(monkeypatch, tmp_path)

    with pytest.raises(CommandError, match=r"^Backup failed: "):
        call_command("backup")

    monkeypatch.undo()
    assert status.read_status().failures_total == 1


def test_a_dump_left_by_a_killed_run_is_deleted_and_runs_take_turns(
    settings: Any, tmp_path: Path
) -> None:
    """A run killed harder than SIGTERM (which ends it through its `finally`) leaves its
    plain dump behind: the next run deletes it. Two runs never share BACKUP_DIR."""
    settings.BACKUP_DIR = tmp_path / "backups"
    leftover = tmp_path / "backups" / ".work-killed"
    leftover.mkdir(parents=True)
    (leftover / "database.sqlite3").write_bytes(b"plain health data")
    with backup.private_workdir() as work:
        assert not leftover.exists()
        assert work.parent == tmp_path / "backups"
        with pytest.raises(backup.BackupError, match="Another backup"), backup.private_workdir():
            pass
        assert work.exists()
    assert not work.exists()


def test_sigterm_ends_a_command_through_its_cleanup(tmp_path: Path) -> None:
    script = (
        "import os, signal, time\n"
        "import django\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'rdv.settings')\n"
        "django.setup()\n"
        "from rdv.continuity.backup import exit_on_sigterm\n"
        "exit_on_sigterm()\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(10)\n"
        "finally:\n"
        f"    open({str(tmp_path / 'cleaned')!r}, 'w').close()\n"
    )
    result = subprocess.run(  # noqa: S603  # nosec B603
        [sys.executable, "-c", script],
        capture_output=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 128 + signal.SIGTERM
    assert (tmp_path / "cleaned").exists()
