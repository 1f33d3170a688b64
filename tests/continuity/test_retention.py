"""Backup retention keeps the newest, the last N, one a day and one a month, and only
ever deletes archives this project wrote."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rdv.continuity.retention import (
    archive_name,
    archives_to_keep,
    parse_archive_name,
    prune,
)

stamps = st.lists(
    st.datetimes(
        min_value=datetime(2025, 1, 1),  # noqa: DTZ001 (hypothesis wants naive bounds)
        max_value=datetime(2027, 12, 31),  # noqa: DTZ001
        timezones=st.just(UTC),
    ).map(lambda d: d.replace(microsecond=0)),
    max_size=60,
)
counts = st.integers(min_value=0, max_value=10)


def day(stamp: datetime) -> tuple[int, int, int]:
    return (stamp.year, stamp.month, stamp.day)


def month(stamp: datetime) -> tuple[int, int]:
    return (stamp.year, stamp.month)


@given(stamps, st.integers(min_value=1, max_value=10), counts, counts)
def test_retention_rules_hold_for_any_history(
    history: list[datetime], last: int, daily: int, monthly: int
) -> None:
    kept = archives_to_keep(history, keep_last=last, keep_daily=daily, keep_monthly=monthly)
    newest_first = sorted(set(history), reverse=True)
    assert kept <= set(history)
    if newest_first:
        assert newest_first[0] in kept
    assert set(newest_first[:last]) <= kept
    recent_days = sorted({day(s) for s in history}, reverse=True)[:daily]
    for wanted in recent_days:
        assert max(s for s in history if day(s) == wanted) in kept
    recent_months = sorted({month(s) for s in history}, reverse=True)[:monthly]
    for wanted_month in recent_months:
        assert max(s for s in history if month(s) == wanted_month) in kept
    # Nothing is kept without a rule asking for it.
    for stamp in kept:
        assert (
            stamp in newest_first[:last]
            or day(stamp) in recent_days
            or month(stamp) in recent_months
        )
    assert len(kept) <= last + daily + monthly
    # Pruning again removes nothing more.
    again = archives_to_keep(kept, keep_last=last, keep_daily=daily, keep_monthly=monthly)
    assert again == kept


@given(stamps)
def test_the_newest_archive_survives_even_with_every_count_at_zero(
    history: list[datetime],
) -> None:
    kept = archives_to_keep(history, keep_last=0, keep_daily=0, keep_monthly=0)
    assert kept == ({max(history)} if history else set())


def test_a_week_of_hourly_backups_keeps_the_last_day_and_one_per_earlier_day() -> None:
    start = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)
    history = [start + timedelta(hours=h) for h in range(7 * 24)]
    kept = archives_to_keep(history, keep_last=24, keep_daily=7, keep_monthly=0)
    assert len(kept) == 24 + 6
    assert {s for s in kept if s < history[-24]} == {
        datetime(2026, 3, d, 23, 30, tzinfo=UTC) for d in range(1, 7)
    }


def test_names_round_trip_and_foreign_names_are_ignored() -> None:
    stamp = datetime(2026, 11, 23, 13, 5, 9, tzinfo=UTC)
    assert archive_name(stamp) == "rdv-20261123T130509Z.rdvbak"
    assert parse_archive_name(archive_name(stamp)) == stamp
    for foreign in (
        "rdv-20261123T130509Z.rdvbak.sha256",
        "rdv-20261123T130509Z.rdvbak.partial",
        "notes.txt",
        "rdv-20261399T130509Z.rdvbak",
        "status.json",
    ):
        assert parse_archive_name(foreign) is None


def test_prune_deletes_only_our_expired_archives_and_their_checksums(tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for d in range(5):
        name = archive_name(start + timedelta(days=d))
        (tmp_path / name).write_bytes(b"archive")
        (tmp_path / f"{name}.sha256").write_text("x")
    (tmp_path / "status.json").write_text("{}")
    (tmp_path / "rdv-manual-copy.rdvbak").write_bytes(b"kept: not one of our names")

    removed = prune(tmp_path, keep_last=2, keep_daily=0, keep_monthly=0)

    assert [p.name for p in removed] == [archive_name(start + timedelta(days=d)) for d in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            archive_name(start + timedelta(days=3)),
            archive_name(start + timedelta(days=3)) + ".sha256",
            archive_name(start + timedelta(days=4)),
            archive_name(start + timedelta(days=4)) + ".sha256",
            "status.json",
            "rdv-manual-copy.rdvbak",
        ]
    )


def test_prune_of_a_missing_directory_removes_nothing(tmp_path: Path) -> None:
    assert prune(tmp_path / "absent", keep_last=1, keep_daily=1, keep_monthly=1) == []
