from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from django.db import DatabaseError

from rdv.core import clock
from rdv.scheduling import services
from rdv.scheduling.models import (
    Appointment,
    AvailabilityRule,
    Closure,
    Slot,
    SlotStatus,
    Visibility,
)
from tests.conftest import Cast, local
from tests.factories import RuleFactory

MONDAY = date(2026, 11, 23)


def generate(cast: Cast, days: int = 14) -> services.GenerationResult:
    return services.generate_slots(
        practitioner_id=cast.dr_roy.pk, first_day=MONDAY, last_day=MONDAY + timedelta(days=days - 1)
    )


def test_generation_is_idempotent(cast: Cast) -> None:
    RuleFactory.create(
        practitioner=cast.dr_roy, weekday=0, start_time=time(9), end_time=time(12), slot_minutes=30
    )
    first = generate(cast)
    second = generate(cast)
    assert first.created == 12  # two Mondays, six slots each
    assert second == services.GenerationResult(created=0, deleted=0)
    assert Slot.objects.filter(practitioner=cast.dr_roy).count() == 12


def test_generation_skips_times_already_past(cast: Cast) -> None:
    RuleFactory.create(
        practitioner=cast.dr_roy, weekday=0, start_time=time(7), end_time=time(9), slot_minutes=30
    )
    generate(cast, days=1)  # the clock says 08:00 that Monday
    starts = sorted(s.start.astimezone(clock.LOCAL_TZ).time() for s in Slot.objects.all())
    assert starts == [time(8, 30)]


def test_changed_rule_replaces_free_slots_but_never_booked_ones(cast: Cast) -> None:
    rule = RuleFactory.create(
        practitioner=cast.dr_roy, weekday=1, start_time=time(9), end_time=time(10), slot_minutes=30
    )
    generate(cast, days=7)
    booked = Slot.objects.get(start=local(2026, 11, 24, 9, 30))
    services.book_appointment(user=cast.marie, slot_id=booked.pk)

    AvailabilityRule.objects.filter(pk=rule.pk).update(slot_minutes=20)
    result = generate(cast, days=7)

    booked.refresh_from_db()
    assert booked.status == SlotStatus.BOOKED
    assert Appointment.objects.get().slot_id == booked.pk
    remaining = sorted(
        (s.start.astimezone(clock.LOCAL_TZ).time(), s.status) for s in Slot.objects.all()
    )
    # The new 09:00 fits before the booked 09:30; 09:20 and 09:40 would overlap it.
    assert remaining == [(time(9, 0), "free"), (time(9, 30), "booked")]
    assert result.deleted == 1


def test_closure_removes_future_free_slots(cast: Cast) -> None:
    RuleFactory.create(
        practitioner=cast.dr_roy, weekday=1, start_time=time(9), end_time=time(11), slot_minutes=60
    )
    generate(cast, days=7)
    Closure.objects.create(
        clinic=cast.laval,
        starts_at=local(2026, 11, 24, 0, 0),
        ends_at=local(2026, 11, 25, 0, 0),
        reason="Tempête",
    )
    generate(cast, days=7)
    assert not Slot.objects.exists()


def test_deactivated_practitioner_keeps_only_booked_slots(cast: Cast) -> None:
    RuleFactory.create(
        practitioner=cast.dr_roy, weekday=1, start_time=time(9), end_time=time(11), slot_minutes=60
    )
    generate(cast, days=7)
    kept = Slot.objects.order_by("start").first()
    assert kept is not None
    services.book_appointment(user=cast.marie, slot_id=kept.pk)
    cast.dr_roy.is_active = False
    cast.dr_roy.save()
    generate(cast, days=7)
    assert list(Slot.objects.values_list("pk", flat=True)) == [kept.pk]


def test_reserved_rule_makes_reserved_slots(cast: Cast) -> None:
    RuleFactory.create(practitioner=cast.dr_roy, weekday=1, visibility=Visibility.REGISTERED)
    generate(cast, days=7)
    assert set(Slot.objects.values_list("visibility", flat=True)) == {"registered"}


def test_horizon_covers_every_active_practitioner(
    cast: Cast, settings: pytest.FixtureRequest
) -> None:
    RuleFactory.create(practitioner=cast.dr_roy, weekday=1)
    RuleFactory.create(practitioner=cast.montreal_doctor, weekday=2)
    result = services.generate_horizon(days=7)
    assert result.created == 12
    assert set(Slot.objects.values_list("practitioner_id", flat=True)) == {
        cast.dr_roy.pk,
        cast.montreal_doctor.pk,
    }


def test_stale_slot_with_a_cancelled_appointment_is_withdrawn_not_deleted(cast: Cast) -> None:
    rule = RuleFactory.create(
        practitioner=cast.dr_roy, weekday=1, start_time=time(9), end_time=time(10), slot_minutes=30
    )
    generate(cast, days=7)
    first = Slot.objects.get(start=local(2026, 11, 24, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=first.pk)
    services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)

    AvailabilityRule.objects.filter(pk=rule.pk).update(slot_minutes=20)
    generate(cast, days=7)

    first.refresh_from_db()
    assert first.status == SlotStatus.WITHDRAWN
    assert Appointment.objects.get().slot_id == first.pk  # history intact
    live = sorted(
        s.start.astimezone(clock.LOCAL_TZ).time()
        for s in Slot.objects.exclude(status=SlotStatus.WITHDRAWN)
    )
    # The new 09:00 slot overlaps the withdrawn one, which no longer counts.
    assert live == [time(9, 0), time(9, 20), time(9, 40)]


def test_inactive_clinic_gets_no_new_slots(cast: Cast) -> None:
    RuleFactory.create(practitioner=cast.dr_roy, weekday=1)
    cast.laval.is_active = False
    cast.laval.save()
    assert generate(cast, days=7).created == 0


def test_one_practitioners_failure_does_not_stop_the_horizon(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    RuleFactory.create(practitioner=cast.dr_roy, weekday=1)
    RuleFactory.create(practitioner=cast.montreal_doctor, weekday=2)
    real = services.generate_slots

    def failing_for_roy(
        *, practitioner_id: int, first_day: date, last_day: date
    ) -> services.GenerationResult:
        if practitioner_id == cast.dr_roy.pk:
            raise DatabaseError("disk full")
        return real(practitioner_id=practitioner_id, first_day=first_day, last_day=last_day)

    monkeypatch.setattr(services, "generate_slots", failing_for_roy)
    result = services.generate_horizon(days=7)
    assert result.created == 6
    assert set(Slot.objects.values_list("practitioner_id", flat=True)) == {cast.montreal_doctor.pk}
