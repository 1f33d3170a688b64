"""The last backups' outcome, kept in a small JSON file beside the archives.

A file, not a table: a backup fails precisely when the database may be unreachable, and
the metric must still say so. Written by `manage.py backup`, read by /metrics.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings


@dataclass(frozen=True)
class BackupStatus:
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    # Failures since the last success (0 once a backup completes again).
    consecutive_failures: int = 0
    # Every failure this status file has seen (a Prometheus counter).
    failures_total: int = 0
    last_archive: str = ""
    last_error: str = ""


def status_path() -> Path:
    return Path(settings.BACKUP_DIR) / "status.json"


def read_status() -> BackupStatus:
    try:
        raw = json.loads(status_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return BackupStatus()
    return BackupStatus(
        last_success_at=_parse_time(raw.get("last_success_at")),
        last_failure_at=_parse_time(raw.get("last_failure_at")),
        consecutive_failures=int(raw.get("consecutive_failures", 0)),
        failures_total=int(raw.get("failures_total", 0)),
        last_archive=str(raw.get("last_archive", "")),
        last_error=str(raw.get("last_error", "")),
    )


def record_success(at: datetime, archive: str) -> BackupStatus:
    old = read_status()
    new = BackupStatus(
        last_success_at=at,
        last_failure_at=old.last_failure_at,
        consecutive_failures=0,
        failures_total=old.failures_total,
        last_archive=archive,
    )
    _write(new)
    return new


def record_failure(at: datetime, error: str) -> BackupStatus:
    old = read_status()
    new = BackupStatus(
        last_success_at=old.last_success_at,
        last_failure_at=at,
        consecutive_failures=old.consecutive_failures + 1,
        failures_total=old.failures_total + 1,
        last_archive=old.last_archive,
        last_error=error[:500],
    )
    _write(new)
    return new


def _parse_time(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _write(status: BackupStatus) -> None:
    path = status_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in asdict(status).items()
    }
    # Written beside, then renamed: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".status-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)
