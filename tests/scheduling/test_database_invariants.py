"""The database itself refuses what must never happen, even if code forgets to check."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction

from rdv.core import clock
from rdv.scheduling.models import Appointment, AppointmentStatus, CancelledBy, Slot
from tests.conftest import Cast, local, make_slot


def test_two_active_appointments_on_one_slot_are_refused(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    now = clock.now()
    Appointment.objects.create(
        slot=slot, patient=cast.marie_self, booked_by=cast.marie, created_at=now, updated_at=now
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            slot=slot, patient=cast.paul_self, booked_by=cast.paul, created_at=now, updated_at=now
        )


def test_a_cancelled_appointment_does_not_block_the_slot(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    now = clock.now()
    Appointment.objects.create(
        slot=slot,
        patient=cast.marie_self,
        booked_by=cast.marie,
        created_at=now,
        updated_at=now,
        status=AppointmentStatus.CANCELLED,
        cancelled_at=now,
        cancelled_by=CancelledBy.PATIENT,
    )
    Appointment.objects.create(
        slot=slot, patient=cast.paul_self, booked_by=cast.paul, created_at=now, updated_at=now
    )
    assert Appointment.objects.filter(slot=slot).count() == 2


@pytest.mark.parametrize(
    ("status", "cancelled_by"),
    [("cancelled", ""), ("cancelled", "robot"), ("booked", "clinic"), ("noshow", "patient")],
)
def test_who_cancelled_is_recorded_exactly_for_cancellations(
    cast: Cast, status: str, cancelled_by: str
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    now = clock.now()
    with pytest.raises(IntegrityError), transaction.atomic():
        Appointment.objects.create(
            slot=slot,
            patient=cast.marie_self,
            booked_by=cast.marie,
            created_at=now,
            updated_at=now,
            status=status,
            cancelled_at=now if status == "cancelled" else None,
            cancelled_by=cancelled_by,
        )


@pytest.mark.parametrize(
    ("offset_minutes", "minutes"),
    [(0, 30), (15, 30), (-15, 30), (-60, 120), (5, 10)],
    ids=["same", "starts-inside", "ends-inside", "encloses", "inside"],
)
def test_overlapping_slots_of_one_practitioner_are_refused(
    cast: Cast, offset_minutes: int, minutes: int
) -> None:
    start = local(2026, 11, 25, 9, 0)
    make_slot(cast.dr_roy, start, minutes=30)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.create(
            clinic=cast.laval,
            practitioner=cast.dr_roy,
            start=start + timedelta(minutes=offset_minutes),
            end=start + timedelta(minutes=offset_minutes + minutes),
            appointment_type="urgent",
            visibility="public",
        )


def test_moving_a_slot_onto_another_is_refused(cast: Cast) -> None:
    make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    later = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=later.pk).update(
            start=local(2026, 11, 25, 9, 15), end=local(2026, 11, 25, 9, 45)
        )


def test_adjacent_slots_and_other_practitioners_are_fine(cast: Cast) -> None:
    start = local(2026, 11, 25, 9, 0)
    make_slot(cast.dr_roy, start)
    make_slot(cast.dr_roy, start + timedelta(minutes=30))
    make_slot(cast.nurse_diane, start)
    assert Slot.objects.count() == 3


def test_status_outside_its_choices_is_refused(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=slot.pk).update(status="maybe")


def test_one_account_cannot_hold_two_slots(cast: Cast) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    until = clock.now() + timedelta(minutes=5)
    Slot.objects.filter(pk=first.pk).update(hold_owner=cast.marie, hold_expires_at=until)
    with pytest.raises(IntegrityError), transaction.atomic():
        Slot.objects.filter(pk=second.pk).update(hold_owner=cast.marie, hold_expires_at=until)


def test_slot_must_end_after_it_starts(cast: Cast) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0), minutes=0)


def test_overlap_guard_survives_table_rebuilds(cast: Cast) -> None:
    """On SQLite a migration that rebuilds the table drops its triggers; migrate restores them."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_constraint WHERE conname = 'slot_no_overlap'")
            assert cursor.fetchone() == (1,)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM sqlite_master"
            " WHERE type = 'trigger' AND name LIKE 'slot%' ORDER BY name"
        )
        assert [r[0] for r in cursor.fetchall()] == [
            "slot_no_overlap_insert",
            "slot_no_overlap_update",
        ]
