"""The portal's "move" page: one day of the clinic's free times, then a POST that moves
the appointment and goes back to the agenda on the new day.

Marie is booked with Dr Roy on Wednesday 25 November at 10:00; the clock stands at Monday
23 November 08:00.
"""

from __future__ import annotations

import pytest

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.notifications.models import Kind, Message
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, AppointmentType, Slot, SlotStatus, Visibility
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import UserFactory


@pytest.fixture
def maries(cast: Cast) -> Appointment:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    return services.book_appointment(user=cast.marie, slot_id=slot.pk, reason="toux")


def move_url(cast: Cast, appointment: Appointment, clinic_id: int | None = None) -> str:
    return f"/clinique/{clinic_id or cast.laval.pk}/rendez-vous/{appointment.pk}/deplacer/"


def assert_not_moved(appointment: Appointment) -> None:
    slot_id = appointment.slot_id
    appointment.refresh_from_db()
    assert (appointment.slot_id, appointment.status) == (slot_id, "booked")
    assert not Message.objects.filter(appointment=appointment, kind=Kind.MOVED).exists()


def test_the_appointment_page_links_to_the_move_page(cast: Cast, maries: Appointment) -> None:
    page = portal_client(cast.sophie).get(f"/clinique/{cast.laval.pk}/rendez-vous/{maries.pk}/")
    assert move_url(cast, maries) in page.content.decode()


def test_the_page_lists_the_days_free_times_and_audits_the_patient_shown(
    cast: Cast, maries: Appointment
) -> None:
    make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    make_slot(
        cast.dr_roy,
        local(2026, 11, 25, 15, 0),
        visibility=Visibility.REGISTERED,
        appointment_type=AppointmentType.PERIODIC,
    )
    make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))  # another day
    make_slot(cast.montreal_doctor, local(2026, 11, 25, 16, 0))  # another clinic
    response = portal_client(cast.sophie).get(move_url(cast, maries))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Move the appointment of Marie" in page
    assert page.count('name="slot_id"') == 2
    assert "14:00" in page
    assert "15:00" in page
    assert "16:00" not in page
    assert "Reserved for registered patients" in page
    assert AuditEntry.objects.filter(
        action="appointment.view", actor_id=cast.sophie.pk, patient_id=cast.marie_self.pk
    ).exists()


def test_another_day_and_practitioner_can_be_chosen(cast: Cast, maries: Appointment) -> None:
    make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    make_slot(cast.dr_roy, local(2026, 11, 26, 10, 0))
    client = portal_client(cast.sophie)
    page = client.get(
        move_url(cast, maries), {"date": "2026-11-26", "practitioner": str(cast.nurse_diane.pk)}
    ).content.decode()
    assert page.count('name="slot_id"') == 1
    assert "09:00" in page


def test_a_receptionist_moves_it_and_lands_on_the_new_day(cast: Cast, maries: Appointment) -> None:
    later = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    response = portal_client(cast.sophie).post(move_url(cast, maries), {"slot_id": later.pk})
    assert response.status_code == 302
    assert response["Location"] == f"/clinique/{cast.laval.pk}/agenda/?date=2026-11-26"
    maries.refresh_from_db()
    assert maries.slot_id == later.pk
    assert Message.objects.filter(appointment=maries, kind=Kind.MOVED).exists()


def test_the_administrator_moves_too(cast: Cast, maries: Appointment) -> None:
    later = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    response = portal_client(cast.marc).post(move_url(cast, maries), {"slot_id": later.pk})
    assert response.status_code == 302
    maries.refresh_from_db()
    assert maries.slot_id == later.pk


def test_a_practitioner_member_is_refused(cast: Cast, maries: Appointment) -> None:
    doctor = UserFactory.create()
    Membership.objects.create(user=doctor, clinic=cast.laval, role=Membership.Role.PRACTITIONER)
    later = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    client = portal_client(doctor)
    assert client.get(move_url(cast, maries)).status_code == 403
    assert client.post(move_url(cast, maries), {"slot_id": later.pk}).status_code == 403
    assert_not_moved(maries)


def test_another_clinic_is_not_found(cast: Cast, maries: Appointment) -> None:
    """Karim (Montréal) with Laval's appointment, in his clinic's address or in Laval's."""
    montreal = make_slot(cast.montreal_doctor, local(2026, 11, 26, 9, 0))
    karim = portal_client(cast.karim)
    for clinic_id in (cast.montreal.pk, cast.laval.pk):
        url = move_url(cast, maries, clinic_id)
        assert karim.get(url).status_code == 404
        response = karim.post(url, {"slot_id": montreal.pk})
        assert response.status_code == 404
        assert b"Marie" not in response.content
    assert_not_moved(maries)


def test_another_clinics_time_is_not_found(cast: Cast, maries: Appointment) -> None:
    montreal = make_slot(cast.montreal_doctor, local(2026, 11, 26, 9, 0))
    response = portal_client(cast.sophie).post(move_url(cast, maries), {"slot_id": montreal.pk})
    assert response.status_code == 404
    assert_not_moved(maries)
    assert Slot.objects.get(pk=montreal.pk).status == SlotStatus.FREE


@pytest.mark.parametrize("sent", [{}, {"slot_id": "abc"}, {"slot_id": "0"}, {"slot_id": "9" * 30}])
def test_bad_input_is_a_clear_error(cast: Cast, maries: Appointment, sent: dict[str, str]) -> None:
    response = portal_client(cast.sophie).post(move_url(cast, maries), sent)
    assert response.status_code == 422
    assert "Choose one of the free times." in response.content.decode()
    assert_not_moved(maries)


def test_a_time_taken_meanwhile_is_a_conflict_shown_on_the_page(
    cast: Cast, maries: Appointment
) -> None:
    later = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    services.book_appointment(user=cast.paul, slot_id=later.pk)
    response = portal_client(cast.sophie).post(
        move_url(cast, maries) + "?date=2026-11-26", {"slot_id": later.pk}
    )
    assert response.status_code == 409
    assert "This slot is no longer available" in response.content.decode()
    assert_not_moved(maries)


def test_the_same_time_is_refused_on_the_page(cast: Cast, maries: Appointment) -> None:
    response = portal_client(cast.sophie).post(move_url(cast, maries), {"slot_id": maries.slot_id})
    assert response.status_code == 422
    assert "Choose a different time from the current one." in response.content.decode()
    assert_not_moved(maries)


def test_a_cancelled_appointment_offers_nothing(cast: Cast, maries: Appointment) -> None:
    make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    client = portal_client(cast.sophie)
    client.post(f"/clinique/{cast.laval.pk}/rendez-vous/{maries.pk}/annuler/", {"reason": "x"})
    page = client.get(move_url(cast, maries)).content.decode()
    assert 'name="slot_id"' not in page
    assert "Only an upcoming booked appointment can be moved." in page


def test_the_french_page(cast: Cast, maries: Appointment) -> None:
    response = portal_client(cast.sophie, "fr").get(move_url(cast, maries))
    assert response.status_code == 200
    assert 'lang="fr' in response.content.decode()
