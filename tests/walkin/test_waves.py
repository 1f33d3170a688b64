"""Walk-in waves at the Laval clinic: Sophie (receptionist) opens the day's waves, gives
out places until a wave is full, and calls people in order.

The capacity is the database's to keep: a compare-and-set on the wave's counter, and a
check constraint that no code can get around. Races are in test_concurrency.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import translation

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.walkin import queries, services
from rdv.walkin.models import WalkIn, WalkInStatus, Wave
from tests.conftest import Cast, local
from tests.factories import UserFactory

TODAY = date(2026, 11, 23)  # the frozen clock's Monday, 08:00


def sophie(cast: Cast) -> StaffContext:
    return staff_context(cast.sophie, cast.laval.pk)


def open_today(
    cast: Cast, first: int = 8, last: int = 9, capacity: int = 3, **extra: Any
) -> list[Wave]:
    return services.open_waves(
        sophie(cast),
        day=TODAY,
        first_start=time(first),
        last_start=time(last),
        capacity=capacity,
        **extra,
    )


def add(cast: Cast, wave: Wave, first_name: str = "Ana", **extra: Any) -> WalkIn:
    return services.add_walk_in(
        sophie(cast), wave.pk, first_name=first_name, last_name="Tremblay", **extra
    )


def local_times(waves: list[Wave]) -> list[str]:
    return [w.start.astimezone(clock.LOCAL_TZ).strftime("%H:%M") for w in waves]


# Opening the day's waves


def test_a_morning_of_half_hour_waves_at_the_local_times(cast: Cast) -> None:
    waves = services.open_waves(
        sophie(cast),
        day=date(2026, 11, 24),
        first_start=time(8),
        last_start=time(11, 30),
        capacity=6,
    )
    assert local_times(waves) == [
        "08:00", "08:30", "09:00", "09:30", "10:00", "10:30", "11:00", "11:30",
    ]  # fmt: skip
    assert {(w.end - w.start, w.capacity, w.taken) for w in waves} == {
        (timedelta(minutes=30), 6, 0)
    }
    assert waves[0].start == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # EST is UTC-5
    assert Wave.objects.filter(clinic=cast.laval, practitioner=None).count() == 8


def test_on_the_fall_back_day_each_wall_clock_time_is_taken_once(cast: Cast) -> None:
    """2026-11-01: 01:00–01:59 happens twice. The waves start at their first occurrence,
    last their real 30 minutes, and never overlap."""
    with clock.frozen_now(local(2026, 10, 30, 12)):
        waves = services.open_waves(
            sophie(cast),
            day=date(2026, 11, 1),
            first_start=time(0),
            last_start=time(3),
            capacity=4,
        )
    assert [w.start.astimezone(UTC).strftime("%H:%M") for w in waves] == [
        "04:00",
        "04:30",
        "05:00",
        "05:30",
        "07:00",
        "07:30",
        "08:00",
    ]  # fmt: skip  (00:00–01:30 EDT, then 02:00–03:00 EST)
    assert local_times(waves) == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:30", "03:00"]
    assert all(w.end - w.start == timedelta(minutes=30) for w in waves)
    assert all(a.end <= b.start for a, b in itertools.pairwise(waves))


def test_on_the_spring_forward_day_the_skipped_times_get_no_wave(cast: Cast) -> None:
    with clock.frozen_now(local(2026, 3, 6, 12)):
        waves = services.open_waves(
            sophie(cast),
            day=date(2026, 3, 8),
            first_start=time(1),
            last_start=time(3, 30),
            capacity=4,
        )
    assert local_times(waves) == ["01:00", "01:30", "03:00", "03:30"]


def test_waves_cannot_be_opened_for_a_past_day(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        services.open_waves(
            sophie(cast),
            day=TODAY - timedelta(days=1),
            first_start=time(8),
            last_start=time(9),
            capacity=3,
        )
    assert (refused.value.status, refused.value.code) == (422, "past_day")
    assert not Wave.objects.exists()


@pytest.mark.parametrize(
    ("times", "minutes", "capacity", "code"),
    [
        ((time(9), time(8)), 30, 3, "wave_order"),
        ((time(8), time(9)), 2, 3, "wave_minutes"),
        ((time(8), time(9)), 30, 0, "wave_capacity"),
        ((time(8), time(9)), 30, 201, "wave_capacity"),
        ((time(6), time(7)), 30, 3, "waves_past"),  # it is 08:00 already
    ],
)
def test_impossible_waves_are_refused(
    cast: Cast, times: tuple[time, time], minutes: int, capacity: int, code: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.open_waves(
            sophie(cast),
            day=TODAY,
            first_start=times[0],
            last_start=times[1],
            minutes=minutes,
            capacity=capacity,
        )
    assert refused.value.code == code
    assert not Wave.objects.exists()


def test_overlapping_waves_are_refused_whole_with_a_readable_reason(cast: Cast) -> None:
    open_today(cast, 8, 9)
    with translation.override("en"), pytest.raises(Conflict) as refused:
        open_today(cast, 9, 10)  # 09:00 is open already; 09:30 and 10:00 are not
    assert refused.value.code == "waves_overlap"
    assert "09:00 to 09:30 is already open" in str(refused.value.message)
    assert Wave.objects.count() == 3
    # A practitioner's own waves may run beside the clinic-wide ones.
    mine = open_today(cast, 9, 10, practitioner_id=cast.dr_roy.pk)
    assert len(mine) == 3
    assert {w.practitioner_id for w in mine} == {cast.dr_roy.pk}


def test_another_clinics_practitioner_is_not_found(cast: Cast) -> None:
    with pytest.raises(NotFound):
        open_today(cast, practitioner_id=cast.montreal_doctor.pk)
    assert not Wave.objects.exists()


# Places and capacity


def test_a_wave_fills_to_capacity_and_refuses_the_next_walk_in(cast: Cast) -> None:
    wave = open_today(cast, capacity=3)[0]
    for name in ("Ana", "Bob", "Chloé"):
        add(cast, wave, name)
    with translation.override("en"), pytest.raises(Conflict) as refused:
        add(cast, wave, "Dina")
    assert (refused.value.status, refused.value.code) == (409, "wave_full")
    assert str(refused.value.message) == (
        "This wave is full (3 patients). Offer the next wave or an appointment."
    )
    wave.refresh_from_db()
    assert wave.taken == 3
    assert list(WalkIn.objects.filter(wave=wave).values_list("first_name", flat=True)) == [
        "Ana", "Bob", "Chloé",
    ]  # fmt: skip


def test_places_are_one_to_n_without_gaps(cast: Cast) -> None:
    first, second = open_today(cast, 8, 8, capacity=5)[0], open_today(cast, 10, 10)[0]
    for _ in range(5):
        add(cast, first)
    add(cast, second)
    assert list(first.walk_ins.order_by("place").values_list("place", flat=True)) == [1, 2, 3, 4, 5]
    assert list(second.walk_ins.values_list("place", flat=True)) == [1]


def test_the_database_refuses_more_places_than_the_capacity(cast: Cast) -> None:
    """Whatever code runs: the check constraint, not only the service, keeps the count."""
    wave = open_today(cast, capacity=2)[0]
    for taken in (F("capacity") + 1, -1):
        with pytest.raises(IntegrityError), transaction.atomic():
            Wave.objects.filter(pk=wave.pk).update(taken=taken)
    for capacity in (0, 201):
        with pytest.raises(IntegrityError), transaction.atomic():
            Wave.objects.filter(pk=wave.pk).update(capacity=capacity)


def test_the_database_gives_a_place_once(cast: Cast) -> None:
    wave = open_today(cast)[0]
    walk_in = add(cast, wave)
    with pytest.raises(IntegrityError), transaction.atomic():
        WalkIn.objects.create(
            wave=wave, place=walk_in.place, first_name="X", last_name="Y", arrived_at=clock.now()
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        WalkIn.objects.filter(pk=walk_in.pk).update(status="seen")  # never called


def test_a_wave_that_has_ended_takes_nobody(cast: Cast) -> None:
    wave = open_today(cast)[0]
    with clock.frozen_now(local(2026, 11, 23, 8, 30)), pytest.raises(Conflict) as refused:
        add(cast, wave)
    assert refused.value.code == "wave_over"
    wave.refresh_from_db()
    assert wave.taken == 0


def test_the_phone_is_normalised_and_stored_encrypted(cast: Cast) -> None:
    wave = open_today(cast)[0]
    walk_in = add(cast, wave, phone="450 555-0123")
    assert WalkIn.objects.get(pk=walk_in.pk).phone == "+14505550123"
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM walkin_walkin WHERE id = %s", [walk_in.pk])
        (stored,) = cursor.fetchone()
    assert "5550123" not in stored
    with pytest.raises(ValidationError) as refused:
        add(cast, wave, phone="123")
    assert refused.value.field == "phone"
    wave.refresh_from_db()
    assert wave.taken == 1  # a refused walk-in takes no place


# The queue


def test_the_queue_gives_each_waiting_person_a_position_and_an_estimated_time(
    cast: Cast,
) -> None:
    first, second = services.open_waves(
        sophie(cast), day=TODAY, first_start=time(8), last_start=time(8, 30), capacity=3
    )
    ana, bob = add(cast, first, "Ana"), add(cast, first, "Bob")
    chloe, dina = add(cast, second, "Chloé"), add(cast, second, "Dina")
    services.call_next(sophie(cast), first.pk)  # Ana

    day = queries.queue(sophie(cast), TODAY)
    # 30 minutes shared by 3 places: 10 minutes each.
    assert [(e.walk_in.pk, e.position, local_hhmm(e.estimate)) for e in day.waiting] == [
        (bob.pk, 1, "08:10"),
        (chloe.pk, 2, "08:30"),
        (dina.pk, 3, "08:40"),
    ]
    assert [e.position for e in day.waves[0].entries] == [None, 1]  # Ana was called
    assert day.waves[0].entries[0].walk_in.pk == ana.pk

    with clock.frozen_now(local(2026, 11, 23, 8, 35)):
        late = queries.queue(sophie(cast), TODAY)
    # Never earlier than now: Bob is late, not "expected 25 minutes ago".
    assert [local_hhmm(e.estimate) for e in late.waiting] == ["08:35", "08:35", "08:40"]


def local_hhmm(moment: datetime | None) -> str:
    assert moment is not None
    return moment.astimezone(clock.LOCAL_TZ).strftime("%H:%M")


def test_calling_seeing_and_leaving_follow_the_order(cast: Cast) -> None:
    wave = open_today(cast)[0]
    ana, bob, chloe = add(cast, wave, "Ana"), add(cast, wave, "Bob"), add(cast, wave, "Chloé")
    ctx = sophie(cast)
    with pytest.raises(Conflict):
        services.set_walk_in_status(ctx, ana.pk, WalkInStatus.SEEN)  # not called yet
    assert services.call_next(ctx, wave.pk).pk == ana.pk
    services.set_walk_in_status(ctx, bob.pk, WalkInStatus.LEFT)
    assert services.call_next(ctx, wave.pk).pk == chloe.pk  # Bob left
    seen = services.set_walk_in_status(ctx, ana.pk, WalkInStatus.SEEN)
    assert (seen.status, seen.done_at) == ("seen", clock.now())
    with pytest.raises(Conflict) as nobody:
        services.call_next(ctx, wave.pk)
    assert nobody.value.code == "nobody_waiting"
    with pytest.raises(ValidationError):
        services.set_walk_in_status(ctx, chloe.pk, "waiting")
    wave.refresh_from_db()
    assert wave.taken == 3  # a place once given is not given again


# Who may do it


def test_a_practitioner_cannot_manage_walk_ins(cast: Cast) -> None:
    doctor = UserFactory.create()
    Membership.objects.create(user=doctor, clinic=cast.laval, role=Membership.Role.PRACTITIONER)
    wave = open_today(cast)[0]
    walk_in = add(cast, wave)
    ctx = staff_context(doctor, cast.laval.pk)
    calls: list[Callable[[], object]] = [
        lambda: services.open_waves(
            ctx, day=TODAY, first_start=time(10), last_start=time(10), capacity=2
        ),
        lambda: services.add_walk_in(ctx, wave.pk, first_name="A", last_name="B"),
        lambda: services.call_next(ctx, wave.pk),
        lambda: services.set_walk_in_status(ctx, walk_in.pk, "left"),
        lambda: services.view_queue(ctx, TODAY),
        lambda: services.view_wave(ctx, wave.pk),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied):
            call()
    assert WalkIn.objects.get().status == "waiting"
    # Another clinic's wave is "not found" for them too, never "forbidden".
    (montreal_wave,) = services.open_waves(
        staff_context(cast.karim, cast.montreal.pk),
        day=TODAY,
        first_start=time(10),
        last_start=time(10),
        capacity=2,
    )
    with pytest.raises(NotFound):
        services.view_wave(ctx, montreal_wave.pk)


def test_another_clinics_waves_and_walk_ins_are_not_found(cast: Cast) -> None:
    wave = open_today(cast)[0]
    walk_in = add(cast, wave)
    karim = staff_context(cast.karim, cast.montreal.pk)
    calls: list[Callable[[], object]] = [
        lambda: services.add_walk_in(karim, wave.pk, first_name="A", last_name="B"),
        lambda: services.call_next(karim, wave.pk),
        lambda: services.set_walk_in_status(karim, walk_in.pk, "left"),
        lambda: services.view_wave(karim, wave.pk),
    ]
    for call in calls:
        with pytest.raises(NotFound):
            call()
    assert services.view_queue(karim, TODAY).waves == []
    wave.refresh_from_db()
    assert wave.taken == 1


# The audit log


def test_every_change_and_every_view_is_audited(cast: Cast) -> None:
    waves = open_today(cast, 8, 8, capacity=1)
    walk_in = add(cast, waves[0])
    with pytest.raises(Conflict):
        add(cast, waves[0])  # full: rolled back, audit entry included
    ctx = sophie(cast)
    services.call_next(ctx, waves[0].pk)
    services.set_walk_in_status(ctx, walk_in.pk, "seen")
    services.view_queue(ctx, TODAY)
    entries = AuditEntry.objects.filter(actor_id=cast.sophie.pk).order_by("id")
    assert list(entries.values_list("action", "object_type", "object_id")) == [
        ("walkin.wave.open", "walkin_wave", str(waves[0].pk)),
        ("walkin.add", "walk_in", str(walk_in.pk)),
        ("walkin.called", "walk_in", str(walk_in.pk)),
        ("walkin.seen", "walk_in", str(walk_in.pk)),
        ("walkin.queue.view", "walkin_day", "2026-11-23"),
    ]
    assert set(entries.values_list("actor_role", "clinic_id")) == {("receptionist", cast.laval.pk)}
