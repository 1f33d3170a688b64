"""The phone page when nobody is found: the receptionist creates the caller's file (no RDV
Santé account), prefilled from the search, and goes straight on to the caller's times. The
file then appears on every clinic page like anyone's."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.scheduling.models import Appointment
from tests.clinics.test_exports import pdf_text
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import UserFactory

BORN = date(1941, 3, 9)
NUMBER = expected_letters(last_name_at_birth="Tremblay", first_name="Gisèle") + "41030911"


def new_page(cast: Cast, clinic_id: int | None = None) -> str:
    return f"/clinique/{clinic_id or cast.laval.pk}/telephone/nouveau/"


def details(**changes: str) -> dict[str, str]:
    fields = {
        "first_name": "Gisèle",
        "last_name": "Tremblay",
        "last_name_at_birth": "",
        "date_of_birth": "1941-03-09",
        "ramq_number": NUMBER,
        "card_sequence_number": "02",
        "phone": "450 555-0177",
    }
    return {f"new-{name}": value for name, value in {**fields, **changes}.items()}


def create(client: Client, cast: Cast, **changes: str) -> Any:
    return client.post(new_page(cast), details(**changes))


def test_an_unknown_number_offers_the_file_prefilled_with_it(cast: Cast) -> None:
    response = portal_client(cast.sophie).post(
        f"/clinique/{cast.laval.pk}/telephone/", {"ramq_number": NUMBER}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Create the caller's file" in page
    assert f'action="{new_page(cast)}"' in page
    assert f'name="new-ramq_number" value="{NUMBER}"' in page


def test_an_unknown_name_and_birth_date_offer_the_file_prefilled_with_them(cast: Cast) -> None:
    response = portal_client(cast.sophie).post(
        f"/clinique/{cast.laval.pk}/telephone/",
        {
            "who-last_name": "Tremblay",
            "who-first_name": "Gisèle",
            "who-date_of_birth": "1941-03-09",
        },
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="new-last_name" value="Tremblay"' in page
    assert 'name="new-first_name" value="Gisèle"' in page
    assert 'name="new-date_of_birth" value="1941-03-09"' in page


def test_someone_found_offers_no_file_to_create(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    assert create(client, cast).status_code == 302
    response = client.post(f"/clinique/{cast.laval.pk}/telephone/", {"ramq_number": NUMBER})
    assert 'name="caller"' in response.content.decode()
    assert "new-first_name" not in response.content.decode()


def test_the_file_is_created_chosen_booked_and_shown_on_the_clinics_pages(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 23, 10, 0))
    client = portal_client(cast.marc)
    assert client.get(new_page(cast)).status_code == 200
    created = create(client, cast)
    assert created.status_code == 302
    assert created["Location"] == f"/clinique/{cast.laval.pk}/telephone/creneaux/"
    gisele = Patient.objects.get(record_clinic=cast.laval)
    slots = client.get(created["Location"])
    assert "A time for Gisèle Tremblay" in slots.content.decode()
    booked = client.post(
        f"/clinique/{cast.laval.pk}/telephone/reserver/",
        {"patient_id": gisele.pk, "slot_id": slot.pk},
    )
    assert booked.status_code == 302
    appointment = Appointment.objects.get(slot=slot, patient=gisele)

    agenda = client.get(f"/clinique/{cast.laval.pk}/agenda/", {"date": "2026-11-23"})
    assert "Tremblay" in agenda.content.decode()
    page = client.get(f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/")
    assert page.status_code == 200
    assert "Tremblay, Gisèle" in page.content.decode()
    assert "Text message" in page.content.decode()  # the confirmation, to the file's phone
    sheet = client.get(f"/clinique/{cast.laval.pk}/feuille-du-jour.pdf", {"date": "2026-11-23"})
    assert sheet.status_code == 200
    assert "Tremblay, Gisèle" in pdf_text(sheet.content)
    csv = client.get(f"/clinique/{cast.laval.pk}/export/agenda.csv", {"date": "2026-11-23"})
    assert "Tremblay" in csv.content.decode()
    arrived = client.post(
        f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/presence/", {"status": "arrived"}
    )
    assert arrived.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "arrived"


def test_the_clinic_cancels_a_files_appointment_from_its_page(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    client = portal_client(cast.sophie)
    create(client, cast)
    gisele = Patient.objects.get(record_clinic=cast.laval)
    client.post(
        f"/clinique/{cast.laval.pk}/telephone/reserver/",
        {"patient_id": gisele.pk, "slot_id": slot.pk},
    )
    appointment = Appointment.objects.get(slot=slot)
    response = client.post(
        f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/annuler/",
        {"reason": "Le médecin est absent"},
    )
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancelled_by) == ("cancelled", "clinic")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"date_of_birth": "2999-01-01"}, "The date of birth is in the future."),
        ({"date_of_birth": "1941-13-45"}, "Enter a valid date."),
        ({"first_name": ""}, "This field is required."),
        ({"phone": "555"}, "Enter a valid phone number, for example 514 555-0123."),
        ({"ramq_number": "TREG 4103 1011"}, "does not match the day of birth"),
    ],
)
def test_bad_details_are_explained_with_nothing_written(
    cast: Cast, changes: dict[str, str], message: str
) -> None:
    response = create(portal_client(cast.sophie), cast, **changes)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Patient.objects.filter(record_clinic__isnull=False).exists()
    assert not AuditEntry.objects.filter(action="patient.create_record").exists()


def test_bad_details_are_explained_in_french(cast: Cast) -> None:
    client = portal_client(cast.sophie, "fr")
    response = create(client, cast, phone="555")
    assert response.status_code == 422
    assert "Entrez un numéro de téléphone valide" in response.content.decode()
    response = create(client, cast, date_of_birth="2999-01-01")
    assert "La date de naissance est dans le futur" in response.content.decode()


def test_a_second_file_for_one_card_is_a_409_that_says_to_search(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    assert create(client, cast).status_code == 302
    again = create(client, cast)
    assert again.status_code == 409
    assert "find them by their number instead" in again.content.decode()
    assert Patient.objects.filter(record_clinic=cast.laval).count() == 1


def test_practitioners_may_not_create_files(cast: Cast) -> None:
    doctor = UserFactory.create(email="roy@example.test")
    Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    client = portal_client(doctor)
    assert client.get(new_page(cast)).status_code == 403
    assert create(client, cast).status_code == 403
    assert not Patient.objects.filter(record_clinic__isnull=False).exists()


def test_another_clinics_page_is_not_found_and_its_staff_cannot_reach_the_file(
    cast: Cast,
) -> None:
    assert create(portal_client(cast.sophie), cast).status_code == 302
    gisele = Patient.objects.get(record_clinic=cast.laval)
    karim = portal_client(cast.karim)
    assert karim.get(new_page(cast)).status_code == 404
    assert karim.post(new_page(cast), details(ramq_number="")).status_code == 404
    found = karim.post(f"/clinique/{cast.montreal.pk}/telephone/", {"ramq_number": NUMBER})
    assert "Gisèle" not in found.content.decode()
    by_name = karim.post(
        f"/clinique/{cast.montreal.pk}/telephone/",
        {"who-last_name": "Tremblay", "who-date_of_birth": "1941-03-09"},
    )
    assert "Gisèle" not in by_name.content.decode()
    slot = make_slot(cast.montreal_doctor, local(2026, 11, 25, 10, 0))
    tampered = karim.post(
        f"/clinique/{cast.montreal.pk}/telephone/reserver/",
        {"patient_id": gisele.pk, "slot_id": slot.pk},
    )
    assert tampered.status_code in (302, 404)
    assert not Appointment.objects.filter(patient=gisele).exists()
    assert Patient.objects.filter(record_clinic__isnull=False).count() == 1
