"""Anti-hoarding: one upcoming appointment per health card and type, whatever the account."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rdv.core import clock
from rdv.core.errors import Conflict
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, AppointmentType, CardClaim
from tests.conftest import NOW, Cast, local, make_slot
from tests.factories import PatientFactory


def card_number(patient: Patient) -> str:
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    return f"{letters}{patient.date_of_birth:%y%m%d}11"


def give_card(patient: Patient) -> Patient:
    return set_health_card(
        patient=patient, ramq_number=card_number(patient), card_sequence_number="01"
    )


@pytest.fixture
def same_card_on_pauls_account(cast: Cast) -> Patient:
    """Paul's account holds a second record of Marie (same names, birth date and card)."""
    give_card(cast.marie_self)
    twin: Patient = PatientFactory.create(
        account=cast.paul,
        relationship=Patient.Relationship.OTHER,
        first_name=cast.marie_self.first_name,
        last_name=cast.marie_self.last_name,
        date_of_birth=cast.marie_self.date_of_birth,
    )
    return give_card(twin)


def test_a_second_account_cannot_book_the_same_type_for_the_same_card(
    cast: Cast, same_card_on_pauls_account: Patient
) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    services.book_appointment(user=cast.marie, slot_id=first.pk)
    with pytest.raises(Conflict) as caught:
        services.book_appointment(
            user=cast.paul, slot_id=second.pk, patient_id=same_card_on_pauls_account.pk
        )
    assert caught.value.code == "card_already_booked"
    assert Appointment.objects.count() == 1
    second.refresh_from_db()
    assert second.status == "free"  # nothing half-written


def test_another_type_or_another_card_is_fine(
    cast: Cast, same_card_on_pauls_account: Patient
) -> None:
    give_card(cast.paul_self)
    urgent = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    periodic = make_slot(
        cast.dr_roy, local(2026, 11, 25, 10, 0), appointment_type=AppointmentType.PERIODIC
    )
    other = make_slot(cast.dr_roy, local(2026, 11, 25, 11, 0))
    services.book_appointment(user=cast.marie, slot_id=urgent.pk)
    services.book_appointment(
        user=cast.paul, slot_id=periodic.pk, patient_id=same_card_on_pauls_account.pk
    )
    services.book_appointment(user=cast.paul, slot_id=other.pk)  # Paul's own card
    assert CardClaim.objects.count() == 3


def test_cancelling_or_a_past_visit_releases_the_card(
    cast: Cast, same_card_on_pauls_account: Patient
) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    third = make_slot(cast.dr_roy, local(2026, 11, 27, 10, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=first.pk)
    services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    services.book_appointment(
        user=cast.paul, slot_id=second.pk, patient_id=same_card_on_pauls_account.pk
    )
    with clock.frozen_now(local(2026, 11, 26, 8, 0)):  # the 10:00 visit of the 25th is over
        services.book_appointment(user=cast.marie, slot_id=third.pk)


def test_moving_keeps_the_card_claimed(cast: Cast, same_card_on_pauls_account: Patient) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    later = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    other = make_slot(cast.dr_roy, local(2026, 11, 27, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=first.pk)
    services.reschedule_appointment(
        user=cast.marie, appointment_id=appointment.pk, new_slot_id=later.pk
    )
    claim = CardClaim.objects.get()
    assert claim.ends_at == later.end
    with pytest.raises(Conflict):
        services.book_appointment(
            user=cast.paul, slot_id=other.pk, patient_id=same_card_on_pauls_account.pk
        )


def test_patients_without_a_card_are_not_covered(cast: Cast) -> None:
    for hour in (9, 10):
        services.book_appointment(
            user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, hour, 0)).pk
        )
    assert not CardClaim.objects.exists()
    assert NOW + timedelta(days=1) > NOW  # the clock is the story's, not the machine's
