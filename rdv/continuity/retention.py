"""Which backup archives to keep: the last N, one a day for D days, one a month for M months.

Days and months are counted among those that have archives (as restic and borg do), not
back from today: if backups stop for a month, pruning never deletes the last good ones
merely because time passed. Only names this project writes (rdv-YYYYMMDDTHHMMSSZ.rdvbak)
are ever considered, so a file someone put beside the archives is never deleted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

ARCHIVE_SUFFIX = ".rdvbak"
CHECKSUM_SUFFIX = ".sha256"
_NAME = re.compile(r"^rdv-(\d{8}T\d{6}Z)\.rdvbak$")
_STAMP = "%Y%m%dT%H%M%SZ"


def archive_name(created_at: datetime) -> str:
    """The file name of an archive taken at `created_at` (to the second, in UTC)."""
    return f"rdv-{created_at.astimezone(UTC).strftime(_STAMP)}{ARCHIVE_SUFFIX}"


def parse_archive_name(name: str) -> datetime | None:
    """When the archive named `name` was taken, or None if this is not one of ours."""
    match = _NAME.match(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def _newest_per(
    stamps: list[datetime], period: Callable[[datetime], tuple[int, ...]], count: int
) -> set[datetime]:
    """The newest stamp of each of the `count` most recent periods that have one."""
    kept: dict[tuple[int, ...], datetime] = {}
    for stamp in stamps:  # newest first
        key = period(stamp)
        if key not in kept:
            if len(kept) == count:
                break
            kept[key] = stamp
    return set(kept.values())


def archives_to_keep(
    stamps: Iterable[datetime], *, keep_last: int, keep_daily: int, keep_monthly: int
) -> set[datetime]:
    """The stamps to keep. The newest is always kept, whatever the counts say."""
    newest_first = sorted(set(stamps), reverse=True)
    if not newest_first:
        return set()
    utc = [stamp.astimezone(UTC) for stamp in newest_first]
    by_utc = dict(zip(utc, newest_first, strict=True))
    keep = set(utc[: max(keep_last, 1)])
    keep |= _newest_per(utc, lambda s: (s.year, s.month, s.day), keep_daily)
    keep |= _newest_per(utc, lambda s: (s.year, s.month), keep_monthly)
    return {by_utc[stamp] for stamp in keep}


def list_archives(directory: Path) -> dict[datetime, Path]:
    """Our archives in `directory`, by the time they were taken."""
    if not directory.is_dir():
        return {}
    found: dict[datetime, Path] = {}
    for path in directory.iterdir():
        stamp = parse_archive_name(path.name)
        if stamp is not None and path.is_file():
            found[stamp] = path
    return found


def prune(directory: Path, *, keep_last: int, keep_daily: int, keep_monthly: int) -> list[Path]:
    """Delete the archives (and their checksum files) the rules do not keep; return them."""
    archives = list_archives(directory)
    keep = archives_to_keep(
        archives, keep_last=keep_last, keep_daily=keep_daily, keep_monthly=keep_monthly
    )
    removed = []
    for stamp, path in sorted(archives.items()):
        if stamp in keep:
            continue
        # The archive first: a checksum file without its archive is harmless, the reverse
        # would be an archive that can no longer be verified.
        path.unlink(missing_ok=True)
        path.with_name(path.name + CHECKSUM_SUFFIX).unlink(missing_ok=True)
        removed.append(path)
    return removed
