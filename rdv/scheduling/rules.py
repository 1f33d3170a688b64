"""Expanding weekly availability rules into concrete slots: pure functions, no database.

Rules are written in local wall-clock time (America/Toronto); slots are instants in UTC.
Across daylight-saving changes:
- a wall-clock start that does not exist (spring forward, 02:00–03:00) gives no slot;
- a wall-clock start that happens twice (fall back, 01:00–02:00) is taken at its first
  occurrence;
- a slot lasts its real duration and must end, on the wall clock, by the rule's end;
- slots never overlap each other or a closure (a sweep drops any that would).

A reserved rule with a release time gives each slot the instant it opens to the public
(`public_from`, that many real hours before its start: across a clock change too).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from rdv.core.clock import LOCAL_TZ


@dataclass(frozen=True)
class RuleSpec:
    rule_id: int
    weekday: int  # 0 = Monday
    start_time: time
    end_time: time
    slot_minutes: int
    appointment_type: str
    visibility: str
    valid_from: date
    valid_until: date | None = None
    release_hours: int | None = None  # reserved slots open to the public this long before

    def applies_on(self, day: date) -> bool:
        return (
            day.weekday() == self.weekday
            and day >= self.valid_from
            and (self.valid_until is None or day <= self.valid_until)
        )


@dataclass(frozen=True)
class SlotSpec:
    start: datetime  # UTC
    end: datetime  # UTC
    appointment_type: str
    visibility: str
    rule_id: int
    public_from: datetime | None = None  # UTC; reserved slots only


def wall_clock_instant(naive: datetime, tz: ZoneInfo = LOCAL_TZ) -> datetime | None:
    """The UTC instant of a local wall-clock time, or None if the clocks skip over it."""
    aware = naive.replace(tzinfo=tz, fold=0)
    instant = aware.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) != naive:
        return None
    return instant


def _public_from(rule: RuleSpec, start: datetime) -> datetime | None:
    if rule.visibility != "registered" or not rule.release_hours:
        return None
    return start - timedelta(hours=rule.release_hours)


def _candidates(rule: RuleSpec, day: date, tz: ZoneInfo) -> Iterable[SlotSpec]:
    step = timedelta(minutes=rule.slot_minutes)
    wall_end = datetime.combine(day, rule.end_time)
    wall = datetime.combine(day, rule.start_time)
    while wall + step <= wall_end:
        start = wall_clock_instant(wall, tz)
        if start is not None:
            end = start + step
            end_wall = end.astimezone(tz).replace(tzinfo=None)
            if end_wall <= wall_end:
                yield SlotSpec(
                    start,
                    end,
                    rule.appointment_type,
                    rule.visibility,
                    rule.rule_id,
                    _public_from(rule, start),
                )
        wall += step


def expand_rules(
    rules: Sequence[RuleSpec],
    closures: Sequence[tuple[datetime, datetime]],
    first_day: date,
    last_day: date,
    tz: ZoneInfo = LOCAL_TZ,
) -> list[SlotSpec]:
    """All slots the rules give one practitioner from `first_day` to `last_day` inclusive.

    Overlapping rules do not produce overlapping slots: the earliest start wins, then the
    lower rule id.
    """
    candidates: list[SlotSpec] = []
    day = first_day
    while day <= last_day:
        for rule in rules:
            if rule.applies_on(day):
                candidates.extend(_candidates(rule, day, tz))
        day += timedelta(days=1)
    candidates.sort(key=lambda s: (s.start, s.rule_id))

    kept: list[SlotSpec] = []
    busy_until: datetime | None = None
    for slot in candidates:
        if busy_until is not None and slot.start < busy_until:
            continue
        if any(slot.start < c_end and c_start < slot.end for c_start, c_end in closures):
            continue
        kept.append(slot)
        busy_until = slot.end
    return kept
