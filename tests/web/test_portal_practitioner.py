"""A practitioner's own pages (my day, my registered patients) and the front desk
registering patients with a practitioner, found by their health insurance number.
(Isolation between clinics is walked in tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils.html import strip_tags

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership, Practitioner
from rdv.core import clock
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import PatientFactory, UserFactory


def doctor(cast: Cast, practitioner: Practitioner | None, language: str = "en") -> Client:
    user = UserFactory.create(email="roy@example.test")
    Membership.objects.create(
        user=user, clinic=cast.laval, role="practitioner", practitioner=practitioner
    )
    return portal_client(user, language)


def book(cast: Cast, user: Any, hour: int, practitioner: Any = None, day: int = 23) -> Appointment:
    slot = make_slot(practitioner or cast.dr_roy, local(2026, 11, day, hour))
    return services.book_appointment(user=user, slot_id=slot.pk)


def text_of(response: Any) -> str:
    return " ".join(strip_tags(response.content.decode()).split())


def card_number(patient: Patient) -> str:
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    return f"{letters}{patient.date_of_birth:%y%m%d}11"


def give_card(patient: Patient) -> str:
    number = card_number(patient)
    set_health_card(patient=patient, ramq_number=number, card_sequence_number="01")
    return number


def list_url(cast: Cast, practitioner: Practitioner) -> str:
    return f"/clinique/{cast.laval.pk}/praticiens/{practitioner.pk}/patients/"


def token_in(page: str) -> str:
    found = re.search(r'name="patient" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


# --- My day ------------------------------------------------------------------------------------


def test_my_day_shows_only_my_appointments_and_audits_them(cast: Cast) -> None:
    mine = book(cast, cast.marie, 9)
    book(cast, cast.paul, 10, cast.nurse_diane)
    response = doctor(cast, cast.dr_roy).get(f"/clinique/{cast.laval.pk}/ma-journee/")
    assert response.status_code == 200
    text = text_of(response)
    assert "My day" in text
    assert "Patient, Marie" in text
    assert "Paul" not in text
    assert "data-live" in response.content.decode()
    viewed = AuditEntry.objects.filter(action="agenda.view", actor_role="practitioner")
    assert list(viewed.values_list("object_id", flat=True)) == [str(mine.pk)]


def test_my_day_of_another_date(cast: Cast) -> None:
    book(cast, cast.marie, 9, day=24)
    client = doctor(cast, cast.dr_roy)
    url = f"/clinique/{cast.laval.pk}/ma-journee/"
    assert "Marie" not in client.get(url).content.decode()
    assert "Marie" in client.get(url, {"date": "2026-11-24"}).content.decode()
    assert client.get(url, {"date": "2026-02-30"}).status_code == 200  # falls back to today


def test_a_practitioner_records_a_visit_from_my_day_and_returns_to_it(cast: Cast) -> None:
    appointment = book(cast, cast.marie, 9)
    client = doctor(cast, cast.dr_roy)
    url = f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/presence/"
    arrived = client.post(url, {"status": "arrived", "back": "my_day"})
    assert arrived.status_code == 302
    assert arrived["Location"] == f"/clinique/{cast.laval.pk}/ma-journee/?date=2026-11-23"
    with clock.frozen_now(local(2026, 11, 23, 9, 20)):
        client.post(url, {"status": "fulfilled", "back": "my_day"})
    appointment.refresh_from_db()
    assert appointment.status == "fulfilled"
    page = client.get(f"/clinique/{cast.laval.pk}/ma-journee/").content.decode()
    assert 'name="back" value="my_day"' not in page  # nothing left to record
    assert "Fulfilled" in page


def test_an_unknown_place_to_return_to_is_refused(cast: Cast) -> None:
    appointment = book(cast, cast.marie, 9)
    client = doctor(cast, cast.dr_roy)
    url = f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/presence/"
    assert client.post(url, {"status": "arrived", "back": "https://evil.test/"}).status_code == 400
    appointment.refresh_from_db()
    assert appointment.status == "booked"


@pytest.mark.parametrize("language", ["en", "fr"])
def test_an_unlinked_practitioner_is_told_to_ask_the_administrator(
    cast: Cast, language: str
) -> None:
    book(cast, cast.marie, 9)
    client = doctor(cast, None, language)
    for path in ("ma-journee/", "mes-patients/"):
        response = client.get(f"/clinique/{cast.laval.pk}/{path}")
        assert response.status_code == 200
        text = text_of(response)
        assert "Marie" not in text
        if language == "en":
            assert "Ask the clinic administrator to link it" in text
    assert not AuditEntry.objects.filter(action__endswith=".view").exists()


def test_the_front_desk_is_pointed_to_the_agenda_from_my_day(cast: Cast) -> None:
    response = portal_client(cast.sophie).get(f"/clinique/{cast.laval.pk}/ma-journee/")
    assert response.status_code == 200
    assert "not a practitioner" in text_of(response)


# --- My registered patients --------------------------------------------------------------------


def test_my_registered_patients_with_age_phone_and_visits(cast: Cast) -> None:
    Patient.objects.filter(pk=cast.marie_self.pk).update(phone="+14505550123")
    book(cast, cast.marie, 10, day=30)
    response = doctor(cast, cast.dr_roy).get(f"/clinique/{cast.laval.pk}/mes-patients/")
    assert response.status_code == 200
    text = text_of(response)
    assert "2 registered patients." in text
    assert "Patient, Marie" in text
    assert "(450) 555-0123" in text
    assert "2026-11-30 10:00" in text
    assert "Patient, Léa 3 years" in text
    assert "Unregister" not in text  # the practitioner reads; the front desk records
    shown = AuditEntry.objects.filter(action="registered_patients.view")
    assert set(shown.values_list("patient_id", flat=True)) == {cast.marie_self.pk, cast.lea.pk}
    assert shown.count() == 2


def test_a_long_list_comes_in_pages(cast: Cast) -> None:
    for index in range(51):
        PatientFactory.create(first_name=f"Inscrit{index:02d}", family_doctor=cast.dr_roy)
    client = doctor(cast, cast.dr_roy)
    first = client.get(f"/clinique/{cast.laval.pk}/mes-patients/").content.decode()
    assert "Page 1 of 2" in first
    assert 'href="?page=2"' in first
    second = client.get(f"/clinique/{cast.laval.pk}/mes-patients/", {"page": "2"})
    assert "Page 2 of 2" in second.content.decode()
    assert client.get(f"/clinique/{cast.laval.pk}/mes-patients/", {"page": "x"}).status_code == 200


def test_a_practitioner_opens_their_own_list_only(cast: Cast) -> None:
    client = doctor(cast, cast.nurse_diane)
    assert client.get(list_url(cast, cast.nurse_diane)).status_code == 200
    refused = client.get(list_url(cast, cast.dr_roy))
    assert refused.status_code == 403
    assert "Marie" not in refused.content.decode()
    assert client.get(f"/clinique/{cast.laval.pk}/patients-inscrits/").status_code == 403


# --- The front desk: lists, registering, unregistering ----------------------------------------


def test_the_front_desk_opens_a_doctors_list_from_the_clinics_family_doctors(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    index = client.get(f"/clinique/{cast.laval.pk}/patients-inscrits/")
    assert index.status_code == 200
    assert f'href="{list_url(cast, cast.dr_roy)}"' in index.content.decode()
    assert "2 registered patients" in text_of(index)
    assert "Diane Morin" not in text_of(index)  # a nurse takes no registered patients
    page = client.get(list_url(cast, cast.dr_roy))
    assert page.status_code == 200
    assert "Patient, Marie" in text_of(page)
    assert "Register a patient" in text_of(page)


def test_the_receptionist_registers_a_patient_found_by_their_card(cast: Cast) -> None:
    number = give_card(cast.paul_self)
    client = portal_client(cast.sophie)
    spaced = " ".join(re.findall(".{1,4}", number.lower()))
    found = client.post(list_url(cast, cast.dr_roy), {"ramq_number": spaced})
    assert found.status_code == 200
    assert "ramq_number=" not in found.content.decode()
    assert AuditEntry.objects.filter(action="patient.lookup", patient_id=cast.paul_self.pk).exists()
    done = client.post(
        f"{list_url(cast, cast.dr_roy)}inscrire/", {"patient": token_in(found.content.decode())}
    )
    assert done.status_code == 302
    assert done["Location"] == list_url(cast, cast.dr_roy)
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id == cast.dr_roy.pk
    after = client.get(done["Location"])
    assert "is registered with Dr Jean Roy" in text_of(after)
    assert "Patient, Paul" in text_of(after)


def test_someone_already_registered_here_is_said_so(cast: Cast) -> None:
    number = give_card(cast.marie_self)
    found = portal_client(cast.sophie).post(list_url(cast, cast.dr_roy), {"ramq_number": number})
    assert "already registered with this practitioner" in text_of(found)
    assert 'name="patient"' not in found.content.decode()


@pytest.mark.parametrize(
    ("language", "message"),
    [("en", "4 letters followed by 8 digits"), ("fr", "4 lettres suivies de 8 chiffres")],
)
def test_a_malformed_number_is_explained(cast: Cast, language: str, message: str) -> None:
    client = portal_client(cast.sophie, language)
    bad = client.post(list_url(cast, cast.dr_roy), {"ramq_number": "12345"})
    assert bad.status_code == 422
    assert message in bad.content.decode()
    empty = client.post(list_url(cast, cast.dr_roy), {"ramq_number": ""})
    assert empty.status_code == 422
    assert 'class="error-summary"' in empty.content.decode()


def test_registering_needs_a_token_of_this_clinic_and_staff_member(cast: Cast) -> None:
    number = give_card(cast.paul_self)
    marc_page = portal_client(cast.marc).post(list_url(cast, cast.dr_roy), {"ramq_number": number})
    marcs_token = token_in(marc_page.content.decode())
    client = portal_client(cast.sophie)
    url = f"{list_url(cast, cast.dr_roy)}inscrire/"
    for token in (marcs_token, "forged", str(cast.paul_self.pk)):
        refused = client.post(url, {"patient": token})
        assert refused.status_code == 404
        assert "Find the patient again" in refused.content.decode()
    assert client.post(url, {}).status_code == 302  # nothing posted: back to the list
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id is None


def test_registering_with_a_nurse_is_refused_with_a_reason(cast: Cast) -> None:
    number = give_card(cast.paul_self)
    client = portal_client(cast.sophie)
    page = client.get(list_url(cast, cast.nurse_diane))
    assert "Only family doctors and nurse practitioners" in text_of(page)
    found = client.post(list_url(cast, cast.dr_roy), {"ramq_number": number})
    refused = client.post(
        f"{list_url(cast, cast.nurse_diane)}inscrire/",
        {"patient": token_in(found.content.decode())},
    )
    assert refused.status_code == 409
    assert "Only family doctors and nurse practitioners" in refused.content.decode()
    assert Patient.objects.get(pk=cast.paul_self.pk).family_doctor_id is None


@pytest.mark.rate_limits
def test_looking_patients_up_shares_the_callers_limit(cast: Cast, settings: Any) -> None:
    settings.RATE_LIMITS = {"caller_lookup": "2/h"}
    client = portal_client(cast.sophie)
    answers = [
        client.post(list_url(cast, cast.dr_roy), {"ramq_number": "ZZZZ80010111"}).status_code
        for _ in range(2)
    ]
    phone = client.post(f"/clinique/{cast.laval.pk}/telephone/", {"ramq_number": "ZZZZ80010111"})
    assert [*answers, phone.status_code] == [200, 200, 429]
    assert "Retry-After" in phone


def test_the_receptionist_unregisters_a_patient(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    done = client.post(f"{list_url(cast, cast.dr_roy)}{cast.marie_self.pk}/retirer/")
    assert done.status_code == 302
    assert Patient.objects.get(pk=cast.marie_self.pk).family_doctor_id is None
    again = client.post(f"{list_url(cast, cast.dr_roy)}{cast.marie_self.pk}/retirer/")
    assert again.status_code == 404
    elsewhere = client.post(f"{list_url(cast, cast.nurse_diane)}{cast.lea.pk}/retirer/")
    assert elsewhere.status_code == 404
    assert Patient.objects.get(pk=cast.lea.pk).family_doctor_id == cast.dr_roy.pk


def test_practitioners_neither_look_up_nor_change_registrations(cast: Cast) -> None:
    client = doctor(cast, cast.dr_roy)
    assert (
        client.post(list_url(cast, cast.dr_roy), {"ramq_number": "ZZZZ80010111"}).status_code == 403
    )
    assert not AuditEntry.objects.filter(action="patient.lookup").exists()
    refused = client.post(f"{list_url(cast, cast.dr_roy)}{cast.marie_self.pk}/retirer/")
    assert refused.status_code == 403
    assert Patient.objects.get(pk=cast.marie_self.pk).family_doctor_id == cast.dr_roy.pk


def test_another_clinics_practitioner_is_not_found(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    assert client.get(list_url(cast, cast.montreal_doctor)).status_code == 404
    gone = client.post(f"{list_url(cast, cast.montreal_doctor)}inscrire/", {"patient": "x"})
    assert gone.status_code == 404
