"""Slot expansion, property-tested across Quebec's daylight-saving changes."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rdv.core.clock import LOCAL_TZ
from rdv.scheduling.rules import RuleSpec, SlotSpec, expand_rules, wall_clock_instant

SPRING_FORWARD = date(2026, 3, 8)  # 02:00 EST → 03:00 EDT
FALL_BACK = date(2026, 11, 1)  # 02:00 EDT → 01:00 EST


def rule(
    weekday: int, start: time, end: time, minutes: int, rule_id: int = 1, **kw: object
) -> RuleSpec:
    return RuleSpec(
        rule_id=rule_id,
        weekday=weekday,
        start_time=start,
        end_time=end,
        slot_minutes=minutes,
        appointment_type="urgent",
        visibility="public",
        valid_from=kw.get("valid_from", date(2026, 1, 1)),  # type: ignore[arg-type]
        valid_until=kw.get("valid_until"),  # type: ignore[arg-type]
    )


def wall(slot_time: datetime) -> datetime:
    return slot_time.astimezone(LOCAL_TZ).replace(tzinfo=None)


def test_a_morning_gives_local_times_in_utc() -> None:
    slots = expand_rules(
        [rule(0, time(9), time(10), 30)], [], date(2026, 11, 23), date(2026, 11, 23)
    )
    assert [s.start for s in slots] == [
        datetime(2026, 11, 23, 14, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 14, 30, tzinfo=UTC),
    ]


def test_wall_clock_is_right_on_both_sides_of_spring_forward() -> None:
    saturday, sunday, monday = (SPRING_FORWARD + timedelta(days=d) for d in (-1, 0, 1))
    rules = [
        rule(d.weekday(), time(9), time(9, 30), 30, rule_id=d.weekday())
        for d in (saturday, sunday, monday)
    ]
    slots = expand_rules(rules, [], saturday, monday)
    assert [s.start.astimezone(UTC).hour for s in slots] == [14, 13, 13]  # EST, then EDT
    assert [wall(s.start).time() for s in slots] == [time(9, 0)] * 3


def test_wall_clock_is_right_on_both_sides_of_fall_back() -> None:
    saturday, sunday = FALL_BACK - timedelta(days=1), FALL_BACK
    rules = [
        rule(d.weekday(), time(9), time(9, 30), 30, rule_id=d.weekday()) for d in (saturday, sunday)
    ]
    slots = expand_rules(rules, [], saturday, sunday)
    assert [s.start.astimezone(UTC).hour for s in slots] == [13, 14]  # EDT, then EST
    assert [wall(s.start).time() for s in slots] == [time(9, 0)] * 2


def test_no_slot_starts_in_the_skipped_hour() -> None:
    slots = expand_rules([rule(6, time(1), time(4), 30)], [], SPRING_FORWARD, SPRING_FORWARD)
    # 01:30 EST + 30 min ends at 03:00 EDT; 02:00 and 02:30 do not exist that night.
    assert [wall(s.start).time() for s in slots] == [time(1), time(1, 30), time(3), time(3, 30)]


def test_a_slot_spanning_the_skipped_hour_is_not_overlapped_by_the_next() -> None:
    # 01:30 EST + 45 min ends at 03:15 EDT, so the 03:00 slot would overlap it.
    slots = expand_rules([rule(6, time(0), time(5), 45)], [], SPRING_FORWARD, SPRING_FORWARD)
    assert [wall(s.start).time() for s in slots] == [time(0), time(0, 45), time(1, 30), time(3, 45)]


def test_repeated_hour_is_used_once() -> None:
    slots = expand_rules([rule(6, time(0, 30), time(2, 30), 30)], [], FALL_BACK, FALL_BACK)
    assert [wall(s.start).time() for s in slots] == [time(0, 30), time(1), time(1, 30), time(2)]
    assert all(b.start >= a.end for a, b in itertools.pairwise(slots))


def test_nonexistent_wall_time_has_no_instant() -> None:
    assert wall_clock_instant(datetime.combine(SPRING_FORWARD, time(2, 30))) is None
    three = wall_clock_instant(datetime.combine(SPRING_FORWARD, time(3, 0)))
    assert three == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_closure_removes_the_slots_it_touches() -> None:
    day = date(2026, 11, 23)
    closure = (
        datetime(2026, 11, 23, 14, 15, tzinfo=UTC),
        datetime(2026, 11, 23, 14, 45, tzinfo=UTC),
    )
    slots = expand_rules([rule(0, time(9), time(10, 30), 30)], [closure], day, day)
    assert [wall(s.start).time() for s in slots] == [time(10, 0)]


def test_validity_dates_are_inclusive() -> None:
    spec = rule(
        0, time(9), time(9, 30), 30, valid_from=date(2026, 11, 23), valid_until=date(2026, 11, 30)
    )
    slots = expand_rules([spec], [], date(2026, 11, 16), date(2026, 12, 7))
    assert [wall(s.start).date() for s in slots] == [date(2026, 11, 23), date(2026, 11, 30)]


# --- Properties -------------------------------------------------------------------------

minutes_of_day = st.integers(min_value=0, max_value=24 * 60 - 6)


@st.composite
def rules_strategy(draw: st.DrawFn) -> list[RuleSpec]:
    specs = []
    for rule_id in range(1, draw(st.integers(1, 4)) + 1):
        start = draw(minutes_of_day)
        end = draw(st.integers(min_value=start + 5, max_value=24 * 60 - 1))
        specs.append(
            rule(
                draw(st.integers(0, 6)),
                time(start // 60, start % 60),
                time(end // 60, end % 60),
                draw(st.sampled_from([5, 10, 15, 20, 25, 30, 45, 60, 90, 120])),
                rule_id=rule_id,
            )
        )
    return specs


# Windows that straddle both 2026 changes, and an ordinary week.
windows = st.sampled_from(
    [
        (SPRING_FORWARD - timedelta(days=3), SPRING_FORWARD + timedelta(days=3)),
        (FALL_BACK - timedelta(days=3), FALL_BACK + timedelta(days=3)),
        (date(2026, 6, 1), date(2026, 6, 7)),
    ]
)


def inside(slot: SlotSpec, spec: RuleSpec) -> bool:
    start_wall, end_wall = wall(slot.start), wall(slot.end)
    day = start_wall.date()
    return (
        spec.applies_on(day)
        and end_wall.date() == day
        and start_wall.time() >= spec.start_time
        and end_wall.time() <= spec.end_time
        and slot.end - slot.start == timedelta(minutes=spec.slot_minutes)
    )


@given(rules_strategy(), windows)
def test_slots_never_overlap_and_stay_inside_their_rule(
    specs: list[RuleSpec], window: tuple[date, date]
) -> None:
    slots = expand_rules(specs, [], *window)
    by_id = {s.rule_id: s for s in specs}
    for earlier, later in itertools.pairwise(slots):
        assert later.start >= earlier.end
    for slot in slots:
        assert slot.start.tzinfo is not None
        assert inside(slot, by_id[slot.rule_id])
        assert wall_clock_instant(wall(slot.start)) == slot.start  # a real, first-occurrence time


@given(rules_strategy(), windows)
def test_a_lone_rule_misses_only_times_the_clock_skips(
    specs: list[RuleSpec], window: tuple[date, date]
) -> None:
    spec = specs[0]
    slots = expand_rules([spec], [], *window)
    starts = {wall(s.start) for s in slots}
    day = window[0]
    while day <= window[1]:
        if spec.applies_on(day):
            step = timedelta(minutes=spec.slot_minutes)
            moment = datetime.combine(day, spec.start_time)
            while moment + step <= datetime.combine(day, spec.end_time):
                instant = wall_clock_instant(moment)
                ordinary = instant is not None and day not in (SPRING_FORWARD, FALL_BACK)
                if ordinary:
                    assert moment in starts
                moment += step
        day += timedelta(days=1)


@given(rules_strategy(), windows)
def test_the_order_rules_are_read_in_does_not_matter(
    specs: list[RuleSpec], window: tuple[date, date]
) -> None:
    assert expand_rules(specs, [], *window) == expand_rules(list(reversed(specs)), [], *window)


def test_a_slot_that_would_end_after_the_rule_on_the_wall_clock_is_dropped() -> None:
    # Nominally 01:30–02:30, but 60 real minutes after 01:30 EST is 03:30 EDT, past 03:00.
    slots = expand_rules([rule(6, time(1, 30), time(3), 60)], [], SPRING_FORWARD, SPRING_FORWARD)
    assert slots == []
