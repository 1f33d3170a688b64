from __future__ import annotations

from datetime import timedelta

import pytest

from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, SlotUnavailable, ValidationError
from rdv.scheduling import services
from rdv.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Slot,
    SlotStatus,
    Visibility,
)
from tests.conftest import NOW, Cast, local, make_slot


@pytest.fixture
def wednesday_slot(cast: Cast) -> Slot:
    return make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))


def test_patient_books_a_free_slot(cast: Cast, wednesday_slot: Slot) -> None:
    appointment = services.book_appointment(
        user=cast.marie, slot_id=wednesday_slot.pk, reason="  Toux  "
    )
    wednesday_slot.refresh_from_db()
    assert wednesday_slot.status == SlotStatus.BOOKED
    assert appointment.patient == cast.marie_self
    assert appointment.status == AppointmentStatus.BOOKED
    assert appointment.reason == "Toux"


def test_second_booking_of_the_same_slot_is_refused_without_a_trace(
    cast: Cast, wednesday_slot: Slot
) -> None:
    services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    with pytest.raises(SlotUnavailable):
        services.book_appointment(user=cast.paul, slot_id=wednesday_slot.pk)
    assert Appointment.objects.count() == 1


def test_parent_books_for_their_child(cast: Cast, wednesday_slot: Slot) -> None:
    appointment = services.book_appointment(
        user=cast.marie, slot_id=wednesday_slot.pk, patient_id=cast.lea.pk
    )
    assert appointment.patient == cast.lea


def test_cannot_book_for_someone_elses_patient(cast: Cast, wednesday_slot: Slot) -> None:
    with pytest.raises(NotFound):
        services.book_appointment(user=cast.paul, slot_id=wednesday_slot.pk, patient_id=cast.lea.pk)
    assert not Appointment.objects.exists()


def test_unknown_slot_is_not_found(cast: Cast) -> None:
    with pytest.raises(NotFound):
        services.book_appointment(user=cast.marie, slot_id=999_999)


def test_past_slot_cannot_be_booked(cast: Cast) -> None:
    past = make_slot(cast.dr_roy, NOW - timedelta(hours=1))
    with pytest.raises(SlotUnavailable) as caught:
        services.book_appointment(user=cast.marie, slot_id=past.pk)
    assert caught.value.code == "slot_in_past"


def test_reserved_slot_is_only_for_the_doctors_registered_patients(cast: Cast) -> None:
    reserved = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0), visibility=Visibility.REGISTERED)
    with pytest.raises(NotFound):
        services.book_appointment(user=cast.paul, slot_id=reserved.pk)
    assert (
        services.book_appointment(user=cast.marie, slot_id=reserved.pk).patient == cast.marie_self
    )


def test_child_slot_refuses_a_grown_up(cast: Cast) -> None:
    child_slot = make_slot(
        cast.nurse_diane, local(2026, 11, 25, 10, 0), appointment_type=AppointmentType.CHILD_0_5
    )
    with pytest.raises(ValidationError):
        services.book_appointment(user=cast.marie, slot_id=child_slot.pk)
    assert services.book_appointment(user=cast.marie, slot_id=child_slot.pk, patient_id=cast.lea.pk)


# --- Holds ------------------------------------------------------------------------------


def test_slot_held_by_someone_else_cannot_be_booked_until_the_hold_expires(
    cast: Cast, wednesday_slot: Slot
) -> None:
    hold = services.hold_slot(user=cast.marie, slot_id=wednesday_slot.pk)
    assert hold.expires_at == NOW + timedelta(minutes=5)
    with pytest.raises(SlotUnavailable) as caught:
        services.book_appointment(user=cast.paul, slot_id=wednesday_slot.pk)
    assert caught.value.code == "slot_held"
    with pytest.raises(SlotUnavailable):
        services.hold_slot(user=cast.paul, slot_id=wednesday_slot.pk)

    with clock.frozen_now(NOW + timedelta(minutes=5, seconds=1)):
        appointment = services.book_appointment(user=cast.paul, slot_id=wednesday_slot.pk)
    assert appointment.patient == cast.paul_self


def test_holder_books_their_held_slot_and_the_hold_is_released(
    cast: Cast, wednesday_slot: Slot
) -> None:
    services.hold_slot(user=cast.marie, slot_id=wednesday_slot.pk)
    services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    wednesday_slot.refresh_from_db()
    assert (wednesday_slot.hold_owner, wednesday_slot.hold_expires_at) == (None, None)


def test_a_new_hold_releases_the_previous_one(cast: Cast, wednesday_slot: Slot) -> None:
    other = make_slot(cast.dr_roy, local(2026, 11, 25, 11, 0))
    services.hold_slot(user=cast.marie, slot_id=wednesday_slot.pk)
    services.hold_slot(user=cast.marie, slot_id=other.pk)
    assert list(Slot.objects.filter(hold_owner=cast.marie).values_list("pk", flat=True)) == [
        other.pk
    ]
    services.book_appointment(user=cast.paul, slot_id=wednesday_slot.pk)


def test_holding_again_extends_the_hold(cast: Cast, wednesday_slot: Slot) -> None:
    services.hold_slot(user=cast.marie, slot_id=wednesday_slot.pk)
    with clock.frozen_now(NOW + timedelta(minutes=3)):
        hold = services.hold_slot(user=cast.marie, slot_id=wednesday_slot.pk)
    assert hold.expires_at == NOW + timedelta(minutes=8)


# --- Cancel -----------------------------------------------------------------------------


def test_cancel_frees_the_slot(cast: Cast, wednesday_slot: Slot) -> None:
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    cancelled = services.cancel_appointment(
        user=cast.marie, appointment_id=appointment.pk, reason="Mieux"
    )
    wednesday_slot.refresh_from_db()
    assert cancelled.status == AppointmentStatus.CANCELLED
    assert cancelled.cancelled_at == NOW
    assert wednesday_slot.status == SlotStatus.FREE
    services.book_appointment(user=cast.paul, slot_id=wednesday_slot.pk)


def test_cannot_cancel_someone_elses_appointment(cast: Cast, wednesday_slot: Slot) -> None:
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    with pytest.raises(NotFound):
        services.cancel_appointment(user=cast.paul, appointment_id=appointment.pk)
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_cancel_twice_is_refused(cast: Cast, wednesday_slot: Slot) -> None:
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    with pytest.raises(Conflict):
        services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)


def test_cancel_after_the_cutoff_is_refused(cast: Cast) -> None:
    tomorrow_morning = make_slot(
        cast.dr_roy, local(2026, 11, 24, 7, 30)
    )  # 23.5 h away; cut-off is 24 h
    appointment = services.book_appointment(user=cast.marie, slot_id=tomorrow_morning.pk)
    with clock.frozen_now(NOW + timedelta(minutes=16)), pytest.raises(Conflict) as caught:
        services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    assert caught.value.code == "cutoff_passed"
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_a_fresh_booking_can_be_undone_inside_the_cutoff(cast: Cast) -> None:
    tomorrow_morning = make_slot(cast.dr_roy, local(2026, 11, 24, 7, 30))
    appointment = services.book_appointment(user=cast.marie, slot_id=tomorrow_morning.pk)
    with clock.frozen_now(NOW + timedelta(minutes=10)):
        services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    tomorrow_morning.refresh_from_db()
    assert tomorrow_morning.status == SlotStatus.FREE


# --- Reschedule -------------------------------------------------------------------------


def test_reschedule_takes_the_new_slot_and_frees_the_old(cast: Cast, wednesday_slot: Slot) -> None:
    later = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    moved = services.reschedule_appointment(
        user=cast.marie, appointment_id=appointment.pk, new_slot_id=later.pk
    )
    wednesday_slot.refresh_from_db()
    later.refresh_from_db()
    assert (moved.pk, moved.slot_id) == (appointment.pk, later.pk)
    assert (wednesday_slot.status, later.status) == (SlotStatus.FREE, SlotStatus.BOOKED)


def test_reschedule_to_a_taken_slot_changes_nothing(cast: Cast, wednesday_slot: Slot) -> None:
    taken = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    services.book_appointment(user=cast.paul, slot_id=taken.pk)
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    with pytest.raises(SlotUnavailable):
        services.reschedule_appointment(
            user=cast.marie, appointment_id=appointment.pk, new_slot_id=taken.pk
        )
    appointment.refresh_from_db()
    wednesday_slot.refresh_from_db()
    assert appointment.slot_id == wednesday_slot.pk
    assert wednesday_slot.status == SlotStatus.BOOKED
    assert Appointment.objects.filter(status=AppointmentStatus.BOOKED).count() == 2


def test_reschedule_to_the_same_slot_is_invalid(cast: Cast, wednesday_slot: Slot) -> None:
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    with pytest.raises(ValidationError):
        services.reschedule_appointment(
            user=cast.marie, appointment_id=appointment.pk, new_slot_id=wednesday_slot.pk
        )


def test_reschedule_of_a_cancelled_appointment_is_refused(cast: Cast, wednesday_slot: Slot) -> None:
    later = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    with pytest.raises(Conflict):
        services.reschedule_appointment(
            user=cast.marie, appointment_id=appointment.pk, new_slot_id=later.pk
        )
    later.refresh_from_db()
    assert later.status == SlotStatus.FREE


def test_reschedule_to_a_slot_reserved_for_others_is_not_found(cast: Cast) -> None:
    mine = make_slot(cast.montreal_doctor, local(2026, 11, 25, 9, 0))
    reserved = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0), visibility=Visibility.REGISTERED)
    appointment = services.book_appointment(user=cast.paul, slot_id=mine.pk)
    with pytest.raises(NotFound):
        services.reschedule_appointment(
            user=cast.paul, appointment_id=appointment.pk, new_slot_id=reserved.pk
        )


def test_slots_of_an_inactive_practitioner_or_clinic_cannot_be_booked(
    cast: Cast, wednesday_slot: Slot
) -> None:
    cast.dr_roy.is_active = False
    cast.dr_roy.save()
    with pytest.raises(NotFound):
        services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    cast.dr_roy.is_active = True
    cast.dr_roy.save()
    cast.laval.is_active = False
    cast.laval.save()
    with pytest.raises(NotFound):
        services.hold_slot(user=cast.marie, slot_id=wednesday_slot.pk)
    assert not Appointment.objects.exists()


def test_booking_releases_the_accounts_other_hold(cast: Cast, wednesday_slot: Slot) -> None:
    other = make_slot(cast.dr_roy, local(2026, 11, 25, 11, 0))
    services.hold_slot(user=cast.marie, slot_id=other.pk)
    services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
    assert services.book_appointment(user=cast.paul, slot_id=other.pk).patient == cast.paul_self


def test_withdrawn_slot_cannot_be_booked(cast: Cast, wednesday_slot: Slot) -> None:
    Slot.objects.filter(pk=wednesday_slot.pk).update(status=SlotStatus.WITHDRAWN)
    with pytest.raises(NotFound):
        services.book_appointment(user=cast.marie, slot_id=wednesday_slot.pk)
