"""manage.py restore: put an archive back into an empty database and prove it is whole.

Success is declared only once the checksum, the decryption, the dump's own checksum, every
table's exact row count, the applied migrations and the audit chain (verified end to end,
its head equal to the manifest's) all agree. Anything else leaves the target empty again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection

from rdv.audit.queries import verify_chain
from rdv.audit.services import sealed_head
from rdv.continuity import archive as archive_format
from rdv.continuity.backup import (
    MANIFEST_FORMAT,
    MANIFEST_MEMBER,
    PG_RESTORE,
    Snapshot,
    backup_keys,
    file_sha256,
    postgres_env,
    private_workdir,
    read_snapshot,
    run_tool,
)


class RestoreError(Exception):
    """A refused or failed restore; the message says why in one line."""


class TargetNotEmpty(RestoreError):
    pass


class ManifestMismatch(RestoreError):
    pass


class IncompatibleArchive(RestoreError):
    pass


@dataclass(frozen=True)
class RestoreResult:
    manifest: dict[str, Any]
    seconds: float
    # Said, not refused: e.g. anchors of entries written after the backup (data lost).
    chain_note: str = ""


def describe(exc: BaseException) -> str:
    """One line an operator can act on, for each way a restore is refused."""
    reasons: list[tuple[type[BaseException], str]] = [
        (archive_format.ChecksumMismatch, "checksum mismatch: the archive was altered or damaged"),
        (archive_format.TruncatedArchive, "truncated archive: it ends early (incomplete copy?)"),
        (archive_format.WrongKey, "wrong key: no key in BACKUP_ENCRYPTION_KEYS opens it"),
        (archive_format.CorruptArchive, "corrupt archive: its content cannot be read"),
        (TargetNotEmpty, "target database is not empty"),
        (ManifestMismatch, "restored data does not match the manifest"),
        (IncompatibleArchive, "archive does not fit this database"),
    ]
    detail = " ".join(str(exc).split())
    for kind, label in reasons:
        if isinstance(exc, kind):
            return f"{label} ({detail})" if detail else label
    return detail or type(exc).__name__


# --- The target ---------------------------------------------------------------------------


def _sqlite_path() -> Path:
    name = str(connection.settings_dict["NAME"])
    if not name or name == ":memory:" or name.startswith("file:"):
        raise IncompatibleArchive(f"cannot restore into the SQLite database {name!r}")
    return Path(name)


def _sqlite_sidecars(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal")]


def check_target_empty() -> None:
    """The target must hold no table at all: a restore never merges into data."""
    if connection.vendor == "sqlite":
        path = _sqlite_path()
        if not path.exists():
            return
        # Read-only: looking must not create or change the file.
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            # Django's introspection only runs SQL through the cursor: a raw one serves.
            tables = connection.introspection.table_names(db.cursor())  # type: ignore[arg-type]
    else:
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
    if tables:
        raise TargetNotEmpty(
            f"{connection.settings_dict['NAME']} has {len(tables)} tables; "
            "restore only into an empty database"
        )


def _empty_postgresql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP SCHEMA public CASCADE")
        cursor.execute("CREATE SCHEMA public")


def _empty_sqlite(path: Path) -> None:
    connection.close()
    for leftover in [path, *_sqlite_sidecars(path)]:
        leftover.unlink(missing_ok=True)


# --- Checking against the manifest --------------------------------------------------------


def load_manifest(members: dict[str, Path]) -> dict[str, Any]:
    if MANIFEST_MEMBER not in members:
        raise archive_format.CorruptArchive("the archive has no manifest")
    try:
        manifest = json.loads(members[MANIFEST_MEMBER].read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise archive_format.CorruptArchive("the manifest is not valid JSON") from exc
    required = ("format", "vendor", "tables", "schema", "audit_head", "dump", "created_at")
    if not isinstance(manifest, dict) or any(key not in manifest for key in required):
        raise archive_format.CorruptArchive("the manifest lacks required fields")
    if manifest["format"] != MANIFEST_FORMAT:
        raise IncompatibleArchive(f"manifest format {manifest['format']} is not supported")
    return manifest


def _check_dump(members: dict[str, Path], manifest: dict[str, Any]) -> Path:
    dump = members.get(str(manifest["dump"].get("member")))
    if dump is None:
        raise ManifestMismatch("the database dump named in the manifest is not in the archive")
    if file_sha256(dump) != manifest["dump"].get("sha256"):
        raise ManifestMismatch("the database dump does not match the manifest's SHA-256")
    return dump


def compare(snapshot: Snapshot, manifest: dict[str, Any]) -> None:
    """Raise ManifestMismatch naming the first table (in name order) that differs."""
    expected: dict[str, int] = manifest["tables"]
    for table in sorted(set(expected) | set(snapshot.tables)):
        if table not in snapshot.tables:
            raise ManifestMismatch(
                f"table {table} is missing (the manifest says {expected[table]} rows)"
            )
        if table not in expected:
            raise ManifestMismatch(f"table {table} is not in the manifest")
        if snapshot.tables[table] != expected[table]:
            raise ManifestMismatch(
                f"table {table} has {snapshot.tables[table]} rows, "
                f"the manifest says {expected[table]}"
            )
    if snapshot.schema["sha256"] != manifest["schema"].get("sha256"):
        raise ManifestMismatch("the applied migrations differ from the manifest's")
    if _head(snapshot.audit_head) != manifest["audit_head"]:
        raise ManifestMismatch(
            f"the audit head is {_head(snapshot.audit_head)}, "
            f"the manifest says {manifest['audit_head']}"
        )


def _head(head: tuple[int, str] | None) -> dict[str, Any] | None:
    return {"seq": head[0], "hash": head[1]} if head else None


def verify_audit(manifest: dict[str, Any]) -> str:
    """The whole restored chain verifies and ends at the manifest's head.

    Anchors of entries sealed after the backup, and entries the backup caught before they
    were sealed, are expected after a restore (those entries are the data lost, or will be
    sealed by the worker): they are returned as a note, not refused.
    """
    head = sealed_head()
    if _head(head) != manifest["audit_head"]:
        raise ManifestMismatch(
            f"the audit head is {_head(head)}, the manifest says {manifest['audit_head']}"
        )
    result = verify_chain()
    if result.ok:
        return ""
    head_seq = head[0] if head else 0
    beyond_head = result.first_bad_seq is None or result.first_bad_seq > head_seq
    if result.checked == head_seq and beyond_head:
        return result.problem
    raise ManifestMismatch(
        f"the audit chain does not verify at entry {result.first_bad_seq}: {result.problem}"
    )


# --- Restoring ----------------------------------------------------------------------------


def _restore_postgresql(dump: Path, manifest: dict[str, Any]) -> str:
    db = connection.settings_dict
    try:
        run_tool(
            [PG_RESTORE, "--exit-on-error", "--no-owner", "--no-privileges",
             "--single-transaction", "--no-password", f"--dbname={db['NAME']}", str(dump)],
            env=postgres_env(db),
            what="pg_restore",
        )  # fmt: skip
        connection.close()
        with connection.cursor() as cursor:
            compare(read_snapshot(cursor), manifest)
        return verify_audit(manifest)
    except BaseException:
        # Whatever was restored is not trusted: leave the target as empty as it was.
        connection.close()
        _empty_postgresql()
        raise


def _regexp(pattern: str | None, value: object) -> bool | None:
    """Django's REGEXP for SQLite, which CHECK constraints use (quick_check evaluates them)."""
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


def _restore_sqlite(dump: Path, manifest: dict[str, Any]) -> str:
    with closing(sqlite3.connect(dump)) as db:
        db.create_function("REGEXP", 2, _regexp, deterministic=True)
        row = db.execute("PRAGMA quick_check").fetchone()
        if not row or row[0] != "ok":
            raise ManifestMismatch("the SQLite copy in the archive fails its integrity check")
        with closing(db.cursor()) as cursor:
            compare(read_snapshot(cursor), manifest)
    target = _sqlite_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    _empty_sqlite(target)
    # Copied beside the target first, so the final step is one atomic rename.
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.restore-", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(dump, staging)
        with open(staging, "rb") as f:
            os.fsync(f.fileno())
        os.replace(staging, target)
    finally:
        Path(staging).unlink(missing_ok=True)
    try:
        return verify_audit(manifest)
    except BaseException:
        _empty_sqlite(target)
        raise


def run_restore(archive: Path) -> RestoreResult:
    """Restore `archive` into the configured (empty) database, verified, or raise.

    read_archive checks the .sha256 file before decrypting anything.
    """
    started = time.monotonic()
    keys = backup_keys()
    check_target_empty()
    with private_workdir() as work:
        members = archive_format.read_archive(archive, keys, work)
        manifest = load_manifest(members)
        if manifest["vendor"] != connection.vendor:
            raise IncompatibleArchive(
                f"a {manifest['vendor']} backup cannot be restored into {connection.vendor}"
            )
        dump = _check_dump(members, manifest)
        if connection.vendor == "postgresql":
            note = _restore_postgresql(dump, manifest)
        else:
            note = _restore_sqlite(dump, manifest)
    return RestoreResult(manifest, time.monotonic() - started, note)


def read_manifest(archive: Path) -> dict[str, Any]:
    """Verify an archive without restoring it: checksum, decryption, manifest, dump hash."""
    with private_workdir() as work:
        members = archive_format.read_archive(archive, backup_keys(), work)
        manifest = load_manifest(members)
        _check_dump(members, manifest)
    return manifest
