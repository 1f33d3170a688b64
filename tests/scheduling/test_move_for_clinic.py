"""The front desk moves a booked appointment to another free time of the clinic.

Marie is booked with Dr Roy on Wednesday 25 November at 10:00 (urgent); the clock stands at
Monday 23 November 08:00. Dr Roy will be away: Sophie, the receptionist, moves her.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any

import pytest
from django.db import connection

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core import clock
from rdv.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    SlotUnavailable,
    ValidationError,
)
from rdv.notifications.models import Kind, Message
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import (
    Appointment,
    AppointmentType,
    CardClaim,
    Closure,
    Slot,
    SlotStatus,
    Visibility,
)
from rdv.scheduling.queries import clinic_slots_for_move
from tests.conftest import Cast, local, make_slot, on_postgres
from tests.factories import UserFactory


def give_card(patient: Patient) -> None:
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    set_health_card(
        patient=patient,
        ramq_number=f"{letters}{patient.date_of_birth:%y%m%d}11",
        card_sequence_number="01",
    )


def booked(cast: Cast, user: Any = None, hour: int = 10) -> Appointment:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, hour, 0))
    return services.book_appointment(user=user or cast.marie, slot_id=slot.pk, reason="toux")


def sophie(cast: Cast) -> StaffContext:
    return staff_context(cast.sophie, cast.laval.pk)


def moved_messages(appointment: Appointment) -> int:
    return Message.objects.filter(appointment=appointment, kind=Kind.MOVED).count()


def assert_untouched(appointment: Appointment, *free_slots: Slot) -> None:
    """Nothing half-written: the appointment where it was, the other slots still free."""
    before_slot = appointment.slot_id
    appointment.refresh_from_db()
    assert (appointment.slot_id, appointment.status) == (before_slot, "booked")
    assert Slot.objects.get(pk=before_slot).status == SlotStatus.BOOKED
    for slot in free_slots:
        slot.refresh_from_db()
        assert slot.status == SlotStatus.FREE
    assert moved_messages(appointment) == 0
    moves = AuditEntry.objects.filter(action="appointment.move", object_id=str(appointment.pk))
    assert not moves.exists()


# --- The move itself ------------------------------------------------------------------------


def test_the_receptionist_moves_an_appointment_to_another_practitioner(cast: Cast) -> None:
    give_card(cast.marie_self)
    appointment = booked(cast)
    old_slot = appointment.slot
    Appointment.objects.filter(pk=appointment.pk).update(confirmed_at=clock.now())
    nurse = make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0), visibility="public")

    moved = services.move_for_clinic(
        sophie(cast), appointment_id=appointment.pk, new_slot_id=nurse.pk
    )

    assert (moved.pk, moved.slot_id, moved.status) == (appointment.pk, nurse.pk, "booked")
    assert moved.confirmed_at is None  # confirmed for the old time only
    assert moved.reason == "toux"
    old_slot.refresh_from_db()
    nurse.refresh_from_db()
    assert (old_slot.status, nurse.status) == (SlotStatus.FREE, SlotStatus.BOOKED)
    claim = CardClaim.objects.get(appointment=moved)
    assert claim.ends_at == nurse.end
    assert moved_messages(moved) > 0
    entry = AuditEntry.objects.get(action="appointment.move")
    assert (entry.actor_id, entry.actor_role, entry.patient_id, entry.clinic_id) == (
        cast.sophie.pk,
        "receptionist",
        cast.marie_self.pk,
        cast.laval.pk,
    )


def test_the_clinic_may_use_a_time_reserved_for_registered_patients(cast: Cast) -> None:
    """Paul has no family doctor: he could not book Dr Roy's reserved time, the clinic can."""
    appointment = booked(cast, user=cast.paul)
    reserved = make_slot(
        cast.dr_roy,
        local(2026, 11, 26, 9, 0),
        visibility=Visibility.REGISTERED,
        appointment_type=AppointmentType.PERIODIC,
    )
    moved = services.move_for_clinic(
        sophie(cast), appointment_id=appointment.pk, new_slot_id=reserved.pk
    )
    assert moved.slot_id == reserved.pk
    assert moved.slot.appointment_type == AppointmentType.PERIODIC


def test_the_old_time_is_withdrawn_when_a_closure_covers_it(cast: Cast) -> None:
    appointment = booked(cast)
    Closure.objects.create(
        clinic=cast.laval,
        practitioner=cast.dr_roy,
        starts_at=local(2026, 11, 25),
        ends_at=local(2026, 11, 26),
        reason="Absent",
    )
    later = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    services.move_for_clinic(sophie(cast), appointment_id=appointment.pk, new_slot_id=later.pk)
    assert Slot.objects.get(pk=appointment.slot_id).status == SlotStatus.WITHDRAWN


def test_the_clinics_cut_off_for_patients_does_not_bind_the_front_desk(cast: Cast) -> None:
    appointment = booked(cast)
    later = make_slot(cast.nurse_diane, local(2026, 11, 25, 11, 0))
    with clock.frozen_now(local(2026, 11, 25, 9, 0)):  # one hour before: past the 24 h cut-off
        moved = services.move_for_clinic(
            sophie(cast), appointment_id=appointment.pk, new_slot_id=later.pk
        )
    assert moved.slot_id == later.pk


def test_the_page_lists_free_times_that_fit_the_patient(cast: Cast) -> None:
    appointment = booked(cast)
    fits = make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    make_slot(cast.dr_roy, local(2026, 11, 25, 15, 0), appointment_type=AppointmentType.CHILD_0_5)
    make_slot(cast.montreal_doctor, local(2026, 11, 25, 14, 0))
    held = make_slot(cast.dr_roy, local(2026, 11, 25, 16, 0))
    services.hold_slot(user=cast.paul, slot_id=held.pk)
    found = clinic_slots_for_move(sophie(cast), appointment, day=date(2026, 11, 25))
    assert [s.pk for s in found] == [fits.pk]


# --- Refusals: clear, and nothing written ------------------------------------------------


def test_the_same_time_is_refused(cast: Cast) -> None:
    appointment = booked(cast)
    with pytest.raises(ValidationError) as refused:
        services.move_for_clinic(
            sophie(cast), appointment_id=appointment.pk, new_slot_id=appointment.slot_id
        )
    assert refused.value.code == "same_slot"
    assert_untouched(appointment)


def test_another_clinics_time_is_not_found(cast: Cast) -> None:
    appointment = booked(cast)
    montreal = make_slot(cast.montreal_doctor, local(2026, 11, 25, 14, 0))
    with pytest.raises(NotFound):
        services.move_for_clinic(
            sophie(cast), appointment_id=appointment.pk, new_slot_id=montreal.pk
        )
    assert_untouched(appointment, montreal)


def test_another_clinics_appointment_is_not_found(cast: Cast) -> None:
    appointment = booked(cast)
    karim = staff_context(cast.karim, cast.montreal.pk)
    montreal = make_slot(cast.montreal_doctor, local(2026, 11, 25, 14, 0))
    with pytest.raises(NotFound):
        services.move_for_clinic(karim, appointment_id=appointment.pk, new_slot_id=montreal.pk)
    assert_untouched(appointment, montreal)


def test_a_practitioner_member_may_not_move(cast: Cast) -> None:
    appointment = booked(cast)
    doctor = UserFactory.create()
    Membership.objects.create(user=doctor, clinic=cast.laval, role=Membership.Role.PRACTITIONER)
    later = make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    with pytest.raises(PermissionDenied):
        services.move_for_clinic(
            staff_context(doctor, cast.laval.pk),
            appointment_id=appointment.pk,
            new_slot_id=later.pk,
        )
    assert_untouched(appointment, later)


@pytest.mark.parametrize("trouble", ["booked", "held", "past"])
def test_a_time_that_is_not_free_is_refused(cast: Cast, trouble: str) -> None:
    appointment = booked(cast)
    target = make_slot(cast.nurse_diane, local(2026, 11, 23, 7, 0))  # before NOW
    if trouble != "past":
        target = make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    if trouble == "booked":
        services.book_appointment(user=cast.paul, slot_id=target.pk)
    if trouble == "held":
        services.hold_slot(user=cast.paul, slot_id=target.pk)
    with pytest.raises(SlotUnavailable):
        services.move_for_clinic(sophie(cast), appointment_id=appointment.pk, new_slot_id=target.pk)
    assert_untouched(appointment)
    target.refresh_from_db()
    assert target.status == (SlotStatus.BOOKED if trouble == "booked" else SlotStatus.FREE)


def test_a_type_that_does_not_fit_the_patient_is_refused(cast: Cast) -> None:
    appointment = booked(cast)
    child = make_slot(
        cast.dr_roy, local(2026, 11, 25, 14, 0), appointment_type=AppointmentType.CHILD_0_5
    )
    with pytest.raises(ValidationError) as refused:
        services.move_for_clinic(sophie(cast), appointment_id=appointment.pk, new_slot_id=child.pk)
    assert refused.value.code == "patient_not_eligible"
    assert_untouched(appointment, child)


def test_a_card_already_holding_that_type_rolls_everything_back(cast: Cast) -> None:
    give_card(cast.marie_self)
    appointment = booked(cast)
    periodic = make_slot(cast.dr_roy, local(2026, 11, 27, 9, 0), appointment_type="periodic")
    services.book_appointment(user=cast.marie, slot_id=periodic.pk)
    another = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0), appointment_type="periodic")
    with pytest.raises(Conflict) as refused:
        services.move_for_clinic(
            sophie(cast), appointment_id=appointment.pk, new_slot_id=another.pk
        )
    assert refused.value.code == "card_already_booked"
    assert_untouched(appointment, another)
    assert CardClaim.objects.filter(appointment=appointment).exists()


@pytest.mark.parametrize("state", ["cancelled", "over"])
def test_only_an_upcoming_booked_appointment_moves(cast: Cast, state: str) -> None:
    appointment = booked(cast)
    later = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    moment = clock.now()
    if state == "cancelled":
        services.cancel_for_clinic(sophie(cast), appointment_id=appointment.pk, reason="Absent")
    else:
        moment = appointment.slot.end + timedelta(minutes=1)
    with clock.frozen_now(moment), pytest.raises(Conflict):
        services.move_for_clinic(sophie(cast), appointment_id=appointment.pk, new_slot_id=later.pk)
    later.refresh_from_db()
    assert later.status == SlotStatus.FREE
    assert moved_messages(appointment) == 0


# --- Two moves onto one time ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_moves_onto_the_same_time_exactly_one_wins(cast: Cast) -> None:
    if not on_postgres():
        pytest.skip("row locks and concurrent transactions: PostgreSQL")
    maries = booked(cast)
    pauls = booked(cast, user=cast.paul, hour=11)
    target = make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    ctx = sophie(cast)
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def move(appointment_id: int) -> None:
        barrier.wait()
        try:
            services.move_for_clinic(ctx, appointment_id=appointment_id, new_slot_id=target.pk)
            outcomes[appointment_id] = "moved"
        except SlotUnavailable:
            outcomes[appointment_id] = "refused"
        except BaseException as exc:  # anything else fails the test below
            outcomes[appointment_id] = repr(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(a.pk,)) for a in (maries, pauls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a move hung"

    assert sorted(outcomes.values()) == ["moved", "refused"], outcomes
    winner_id = next(pk for pk, outcome in outcomes.items() if outcome == "moved")
    loser = maries if winner_id == pauls.pk else pauls
    assert Appointment.objects.get(pk=winner_id).slot_id == target.pk
    assert Appointment.objects.filter(slot=target).count() == 1
    assert_untouched(loser)
    assert Slot.objects.get(pk=Appointment.objects.get(pk=winner_id).slot_id).status == "booked"
    assert AuditEntry.objects.filter(action="appointment.move").count() == 1
