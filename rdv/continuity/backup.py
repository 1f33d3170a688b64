"""manage.py backup: one consistent, encrypted, checksummed archive of the whole database.

The archive holds the database (pg_dump's custom format on PostgreSQL, a page copy made
by SQLite's online backup API) and a manifest describing the same instant: when, which
migrations, how many rows in every table, and the audit chain's head. A restore checks
the restored database against that manifest before declaring success.

Plain dumps are health data: they exist only in a private (0700) directory inside
BACKUP_DIR while an archive is being written or read, and are deleted in every case.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess  # nosec B404
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.mail import send_mail
from django.db import connection

from rdv.audit.models import AuditEntry
from rdv.audit.services import seal_pending
from rdv.continuity import retention, status
from rdv.continuity.archive import BackupKey, parse_keys, verify_checksum, write_archive
from rdv.core import clock

logger = logging.getLogger(__name__)

MANIFEST_MEMBER = "manifest.json"
POSTGRES_MEMBER = "database.pgdump"
SQLITE_MEMBER = "database.sqlite3"
MANIFEST_FORMAT = 1
# Module attributes so an operator's PATH decides, and tests can point at a missing tool.
PG_DUMP = "pg_dump"
PG_RESTORE = "pg_restore"


class BackupError(Exception):
    """A backup that did not complete; the message is one line with no patient data."""


@dataclass(frozen=True)
class Snapshot:
    """What a database holds at one instant: every table's row count, the migrations
    applied, and the audit chain's last sealed entry."""

    tables: dict[str, int]
    schema: dict[str, Any]
    audit_head: tuple[int, str] | None


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    sha256: str
    size: int
    manifest: dict[str, Any]
    copy: Path | None = None
    pruned: list[Path] = field(default_factory=list)


# --- Reading a database's state (the backup's copy, the restore's target) -----------------


def schema_version(applied: list[tuple[str, str]]) -> dict[str, Any]:
    """The last migration applied per app (in applied order) and a hash of them all."""
    latest: dict[str, str] = {}
    for app, name in applied:
        latest[app] = name
    listing = "\n".join(sorted(f"{app}.{name}" for app, name in applied))
    return {
        "latest": dict(sorted(latest.items())),
        "migrations": len(applied),
        "sha256": hashlib.sha256(listing.encode()).hexdigest(),
    }


def read_snapshot(cursor: Any) -> Snapshot:
    """Count every table's rows exactly and read the migrations and audit head, through a
    DB-API cursor on a database of the default connection's vendor (Django's cursor, or a
    raw one on a copy or inside an exported PostgreSQL snapshot)."""
    quote = connection.ops.quote_name
    tables: dict[str, int] = {}
    for table in sorted(connection.introspection.table_names(cursor)):
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")  # noqa: S608  # nosec B608
        tables[table] = int(cursor.fetchone()[0])
    applied: list[tuple[str, str]] = []
    if "django_migrations" in tables:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
        applied = [(str(app), str(name)) for app, name in cursor.fetchall()]
    head = None
    audit_table = AuditEntry._meta.db_table
    if audit_table in tables:
        sealed = f"SELECT seq, hash FROM {quote(audit_table)} WHERE seq IS NOT NULL"  # noqa: S608  # nosec B608
        cursor.execute(f"{sealed} ORDER BY seq DESC LIMIT 1")
        row = cursor.fetchone()
        head = (int(row[0]), str(row[1])) if row else None
    return Snapshot(tables=tables, schema=schema_version(applied), audit_head=head)


# --- Shared plumbing --------------------------------------------------------------------


def backup_keys() -> list[BackupKey]:
    # ArchiveError names the malformed entry (never its secret), or says the list is empty.
    return parse_keys(settings.BACKUP_ENCRYPTION_KEYS)


WORKDIR_PREFIX = ".work-"


@contextmanager
def private_workdir() -> Iterator[Path]:
    """A directory only this user can read, inside BACKUP_DIR, removed whatever happens.

    "Whatever happens" includes being killed: the commands turn SIGTERM into an ordinary
    exit (exit_on_sigterm) so this `finally` runs, and a run killed harder (SIGKILL, the
    machine stopping) leaves a directory the next run deletes. One run at a time holds
    BACKUP_DIR's lock, so no directory in use is ever taken for a leftover.
    """
    base = Path(settings.BACKUP_DIR)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (base / ".lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(
                f"Another backup, restore or verification is using {base}; try again later."
            ) from exc
        for leftover in base.glob(WORKDIR_PREFIX + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
        path = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))  # mkdtemp: mode 0700
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)


def exit_on_sigterm() -> None:
    """systemd stops a unit (and its timeout kills it) with SIGTERM, which by default ends
    Python without running `finally` blocks: plain dumps would stay on disk."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def postgres_env(db: Mapping[str, Any]) -> dict[str, str]:
    """libpq's environment for pg_dump / pg_restore: the password never goes on argv,
    where any local user could read it in the process list."""
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER")):
        if db.get(key):
            env[var] = str(db[key])
    env.pop("PGPASSWORD", None)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    if db.get("OPTIONS", {}).get("sslmode"):
        env["PGSSLMODE"] = str(db["OPTIONS"]["sslmode"])
    return env


def postgres_connect(db: Mapping[str, Any], *, dbname: str | None = None) -> psycopg.Connection:
    params = {
        "dbname": dbname or db["NAME"],
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "sslmode": db.get("OPTIONS", {}).get("sslmode"),
        "connect_timeout": 10,
    }
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


def run_tool(argv: list[str], *, env: dict[str, str], what: str) -> None:
    """Run pg_dump / pg_restore; a failure raises with the tool's last line of complaint."""
    if shutil.which(argv[0], path=env.get("PATH")) is None:
        raise BackupError(f"{argv[0]} was not found on PATH: install the PostgreSQL client.")
    result = subprocess.run(  # noqa: S603  # nosec B603
        argv, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise BackupError(f"{what} failed: {reason}"[:400])


# --- Taking the snapshot ------------------------------------------------------------------


def _dump_postgresql(work: Path) -> tuple[Path, Snapshot, datetime]:
    """pg_dump inside an exported REPEATABLE READ snapshot, so the dump, the counts and the
    audit head describe the same instant whatever commits meanwhile."""
    db = connection.settings_dict
    dump = work / POSTGRES_MEMBER
    with closing(postgres_connect(db)) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction(), conn.cursor() as cursor:
            # Taken first: the manifest may only claim an instant at or before the snapshot.
            created_at = clock.now()
            cursor.execute("SELECT pg_export_snapshot()")
            row = cursor.fetchone()
            if row is None:
                raise BackupError("PostgreSQL did not export a snapshot.")
            snapshot = read_snapshot(cursor)
            run_tool(
                # Uncompressed: the archive compresses once, rather than gzip working
                # through pg_dump's already compressed output again.
                [PG_DUMP, "--format=custom", "--compress=0", f"--snapshot={row[0]}",
                 "--no-password", f"--file={dump}", f"--dbname={db['NAME']}"],
                env=postgres_env(db),
                what="pg_dump",
            )  # fmt: skip
    return dump, snapshot, created_at


def _copy_sqlite(work: Path) -> tuple[Path, Snapshot, datetime]:
    """SQLite's online backup copies every page under one read transaction: a consistent
    copy even while the application writes. Counts and head are read from the copy."""
    source_path = Path(connection.settings_dict["NAME"])
    if not source_path.is_file():
        raise BackupError(f"The SQLite database {source_path} does not exist.")
    copy = work / SQLITE_MEMBER
    with (
        closing(sqlite3.connect(source_path, timeout=30)) as source,
        closing(sqlite3.connect(copy)) as target,
    ):
        created_at = clock.now()
        source.backup(target)
        # One self-contained file (the source runs in WAL mode).
        target.execute("PRAGMA journal_mode=DELETE")
        with closing(target.cursor()) as cursor:
            snapshot = read_snapshot(cursor)
    return copy, snapshot, created_at


def _git_commit() -> str:
    try:
        result = subprocess.run(  # nosec B603 B607
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, informational only)
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def build_manifest(
    *, snapshot: Snapshot, dump: Path, created_at: datetime, duration: float
) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "created_at": created_at.isoformat(),
        "vendor": connection.vendor,
        "host": socket.gethostname(),
        "git_commit": _git_commit(),
        "schema": snapshot.schema,
        "tables": snapshot.tables,
        "total_rows": sum(snapshot.tables.values()),
        "audit_head": (
            {"seq": snapshot.audit_head[0], "hash": snapshot.audit_head[1]}
            if snapshot.audit_head
            else None
        ),
        "dump": {"member": dump.name, "sha256": file_sha256(dump), "size": dump.stat().st_size},
        "dump_seconds": round(duration, 3),
    }


# --- Second location and retention -------------------------------------------------------


def copy_to(archive: Path, expected_sha256: str, directory: Path) -> Path:
    """Copy the archive and its checksum file to `directory`, verify the copy, then move it
    into place: the directory never shows a partial or unverified archive."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=directory))
    try:
        checksum = archive.with_name(archive.name + retention.CHECKSUM_SUFFIX)
        for source in (archive, checksum):
            shutil.copyfile(source, incoming / source.name)
            with (incoming / source.name).open("rb") as f:
                os.fsync(f.fileno())
        copied_sha = verify_checksum(incoming / archive.name)
        if copied_sha != expected_sha256:
            raise BackupError(f"The copy in {directory} does not match the archive's checksum.")
        final = directory / archive.name
        # Checksum file first: an archive that is visible can always be verified.
        os.replace(incoming / checksum.name, directory / checksum.name)
        os.replace(incoming / archive.name, final)
        return final
    finally:
        shutil.rmtree(incoming, ignore_errors=True)


def prune_all() -> list[Path]:
    rules = {
        "keep_last": settings.BACKUP_KEEP_LAST,
        "keep_daily": settings.BACKUP_KEEP_DAILY,
        "keep_monthly": settings.BACKUP_KEEP_MONTHLY,
    }
    removed = retention.prune(Path(settings.BACKUP_DIR), **rules)
    if settings.BACKUP_COPY_DIR:
        removed += retention.prune(Path(settings.BACKUP_COPY_DIR), **rules)
    return removed


# --- The backup ---------------------------------------------------------------------------


def run_backup() -> BackupResult:
    """Write one archive to BACKUP_DIR, copy it to BACKUP_COPY_DIR, then apply retention.

    Raises on any failure; a failed backup never triggers pruning, so old archives stay.
    """
    started = time.monotonic()
    key = backup_keys()[0]
    # Pending audit entries join the chain first, so the head in the manifest is current.
    seal_pending()
    backup_dir = Path(settings.BACKUP_DIR)
    with private_workdir() as work:
        take = _dump_postgresql if connection.vendor == "postgresql" else _copy_sqlite
        dump, snapshot, created_at = take(work)
        manifest = build_manifest(
            snapshot=snapshot, dump=dump, created_at=created_at, duration=time.monotonic() - started
        )
        manifest_path = work / MANIFEST_MEMBER
        manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        name = retention.archive_name(created_at)
        final = backup_dir / name
        if final.exists():
            raise BackupError(f"An archive named {name} already exists: one backup per second.")
        sha256 = write_archive(
            work / name, [(MANIFEST_MEMBER, manifest_path), (dump.name, dump)], key
        )
        checksum_name = name + retention.CHECKSUM_SUFFIX
        os.replace(work / checksum_name, backup_dir / checksum_name)
        os.replace(work / name, final)
    copy = None
    if settings.BACKUP_COPY_DIR:
        copy = copy_to(final, sha256, Path(settings.BACKUP_COPY_DIR))
    pruned = prune_all()
    return BackupResult(final, sha256, final.stat().st_size, manifest, copy, pruned)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500] if not isinstance(exc, BackupError) else text


def backup_with_alerts() -> BackupResult:
    """run_backup, and on failure: the status file (the metric), an error log line, and an
    email to the operators. A failure to email never hides the backup's failure."""
    try:
        result = run_backup()
    except Exception as exc:
        reason = one_line(exc)
        status.record_failure(clock.now(), reason)
        logger.error("Backup failed: %s", reason)
        notify_operators(reason)
        raise BackupError(reason) from exc
    status.record_success(clock.now(), result.archive.name)
    logger.info(
        "Backup written: %s (%d bytes, %d rows)",
        result.archive.name,
        result.size,
        result.manifest["total_rows"],
    )
    return result


def notify_operators(reason: str) -> None:
    recipients = list(settings.OPERATOR_EMAILS)
    if not recipients:
        return
    host = socket.gethostname()
    body = (
        f"The database backup on {host} did not complete at {clock.now().isoformat()}.\n\n"
        f"Reason: {reason}\n\n"
        f"The last successful backup: {status.read_status().last_success_at or 'none recorded'}.\n"
        'See docs/backups.md (section "When a backup fails").'
    )
    try:
        send_mail(f"[RDV Santé] Backup FAILED on {host}", body, None, recipients)
    except Exception as exc:  # any mail failure: log it and go on
        logger.error("Could not email the operators about the failed backup: %s", one_line(exc))
