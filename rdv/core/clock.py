"""The one place that says what time it is and which time zone people live in.

Storage is UTC; people see America/Toronto. Tests move the clock with `frozen_now`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("America/Toronto")

_frozen = threading.local()
_global_frozen: list[datetime] = []


def now() -> datetime:
    """Current time, aware, in UTC."""
    frozen: datetime | None = getattr(_frozen, "value", None)
    if frozen is not None:
        return frozen
    if _global_frozen:
        return _global_frozen[-1]
    return datetime.now(UTC)


@contextlib.contextmanager
def frozen_now(moment: datetime, *, all_threads: bool = False) -> Iterator[None]:
    """Freeze `now()` (tests only). `all_threads` also freezes it for worker threads."""
    if moment.tzinfo is None:
        raise ValueError("frozen_now needs an aware datetime")
    moment = moment.astimezone(UTC)
    if all_threads:
        _global_frozen.append(moment)
    previous = getattr(_frozen, "value", None)
    _frozen.value = moment
    try:
        yield
    finally:
        _frozen.value = previous
        if all_threads:
            _global_frozen.pop()


def local_today() -> date:
    return now().astimezone(LOCAL_TZ).date()


def tomorrow_at(moment: time) -> datetime:
    """Tomorrow (local calendar) at this local wall-clock time: for nightly work."""
    return datetime.combine(local_today() + timedelta(days=1), moment, tzinfo=LOCAL_TZ)


def local_date(moment: datetime) -> date:
    """The local calendar day of an instant."""
    return moment.astimezone(LOCAL_TZ).date()


def local_midnight(day: date) -> datetime:
    """The instant a local calendar day starts, in UTC."""
    return datetime.combine(day, time(0), tzinfo=LOCAL_TZ).astimezone(UTC)


def local_day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start of `first`, start of the day after `last`) as UTC instants."""
    return local_midnight(first), local_midnight(last + timedelta(days=1))
