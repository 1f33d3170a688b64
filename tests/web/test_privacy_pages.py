"""The privacy pages through Django's test client: what each answers, and the "no"s.

The privacy policy is public and names the privacy officer; "who viewed my file", "my
data", the export and the deletion are Marie's alone. The same pages run in a real
browser in tests/e2e/test_privacy_pages.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from rdv.accounts.models import User
from rdv.accounts.registration import TERMS_VERSION
from rdv.audit import services as audit
from rdv.audit.models import AuditEntry
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus
from tests.conftest import PASSWORD, Cast, local, make_slot

ENGLISH = {"accept-language": "en"}


def signed_in(user: User) -> Client:
    user.email_verified_at = local(2026, 11, 1, 9, 0)
    user.save(update_fields=["email_verified_at"])
    client = Client(headers=ENGLISH)
    client.force_login(user)
    return client


def staff_viewed(cast: Cast, patient: Patient, *, by: User, clinic_id: int) -> None:
    audit.record(
        "patient.view",
        actor=by,
        role="receptionist",
        subject=audit.Subject(
            object_type="patient",
            object_id=str(patient.pk),
            patient_id=patient.pk,
            clinic_id=clinic_id,
        ),
    )


@pytest.fixture
def booked(cast: Cast) -> Appointment:
    """Marie's appointment on Wednesday at the Laval clinic."""
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    signed_in(cast.marie)
    return scheduling.book_appointment(
        user=cast.marie, slot_id=slot.pk, patient_id=cast.marie_self.pk, reason="Toux"
    )


# --- The policy -------------------------------------------------------------------------


def test_the_privacy_page_names_the_officer_and_the_terms_in_force(
    cast: Cast, settings: Any
) -> None:
    settings.PRIVACY_OFFICER_NAME = "Claire Fortin"
    settings.PRIVACY_OFFICER_TITLE = "Chief Privacy Officer"
    settings.PRIVACY_OFFICER_EMAIL = "vie-privee@rdvsante.example"
    page = Client(headers=ENGLISH).get("/confidentialite/")
    assert page.status_code == 200
    assert "Claire Fortin" in page.text
    assert "Chief Privacy Officer" in page.text
    assert 'href="mailto:vie-privee@rdvsante.example"' in page.text
    assert TERMS_VERSION in page.text
    assert "Person in charge of the protection of personal information" in page.text


def test_the_privacy_page_offers_the_account_pages_once_signed_in(cast: Cast) -> None:
    assert 'href="/compte/mes-donnees/"' not in Client().get("/confidentialite/").text
    page = signed_in(cast.marie).get("/confidentialite/")
    assert 'href="/compte/mes-donnees/"' in page.text
    assert 'href="/compte/acces-a-mon-dossier/"' in page.text


# --- Who viewed my file -----------------------------------------------------------------


def test_the_access_log_shows_staff_access_to_my_child_and_nobody_elses(cast: Cast) -> None:
    cast.sophie.first_name, cast.sophie.last_name = "Sophie", "Lavoie"
    cast.sophie.save()
    staff_viewed(cast, cast.lea, by=cast.sophie, clinic_id=cast.laval.pk)
    staff_viewed(cast, cast.paul_self, by=cast.karim, clinic_id=cast.montreal.pk)

    page = signed_in(cast.marie).get("/compte/acces-a-mon-dossier/")

    assert page.status_code == 200
    text = page.text
    assert "Sophie Lavoie" in text
    assert "Receptionist" in text
    assert "GMF Laval" in text
    assert "Léa" in text
    assert "Viewed the file" in text
    assert "CLSC Montréal" not in text
    assert "Paul" not in text
    assert 'datetime="2026-11-23T08:00:00-05:00"' in text  # Quebec time


def test_an_empty_access_log_says_so(cast: Cast) -> None:
    staff_viewed(cast, cast.lea, by=cast.sophie, clinic_id=cast.laval.pk)
    page = signed_in(cast.paul).get("/compte/acces-a-mon-dossier/")
    assert page.status_code == 200
    assert "No clinic staff have viewed the files of the people you manage." in page.text


def test_the_access_log_is_paginated_and_bad_page_numbers_are_harmless(cast: Cast) -> None:
    for _ in range(51):
        staff_viewed(cast, cast.lea, by=cast.sophie, clinic_id=cast.laval.pk)
    client = signed_in(cast.marie)
    first = client.get("/compte/acces-a-mon-dossier/")
    assert first.text.count('class="appointment"') == 50
    assert 'href="?page=2"' in first.text
    second = client.get("/compte/acces-a-mon-dossier/", {"page": "2"})
    assert second.text.count('class="appointment"') == 1
    assert 'href="?page=1"' in second.text
    for bad in ("0", "-3", "abc", "99999999999999999999", "1\x00"):
        assert client.get("/compte/acces-a-mon-dossier/", {"page": bad}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/compte/acces-a-mon-dossier/"),
        ("get", "/compte/mes-donnees/"),
        ("post", "/compte/mes-donnees/export.json"),
        ("post", "/compte/mes-donnees/supprimer/"),
    ],
)
def test_the_account_pages_need_a_signed_in_visitor(cast: Cast, method: str, path: str) -> None:
    answer = getattr(Client(), method)(path)
    assert answer.status_code == 302
    assert answer["Location"].startswith("/compte/connexion/")
    assert not AuditEntry.objects.exists()


# --- My data: export --------------------------------------------------------------------


def test_my_data_lists_the_appointments_a_deletion_would_cancel(
    cast: Cast, booked: Appointment
) -> None:
    page = signed_in(cast.marie).get("/compte/mes-donnees/")
    assert page.status_code == 200
    assert f'href="/rendez-vous/{booked.pk}/"' in page.text
    assert 'action="/compte/mes-donnees/export.json"' in page.text
    assert 'action="/compte/mes-donnees/supprimer/"' in page.text
    assert page["Cache-Control"].startswith("max-age=0")


def test_the_export_downloads_my_data_as_a_dated_json_attachment(
    cast: Cast, booked: Appointment
) -> None:
    answer = signed_in(cast.marie).post("/compte/mes-donnees/export.json")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/json")
    assert (
        answer["Content-Disposition"]
        == 'attachment; filename="rdv-sante-mes-donnees-2026-11-23.json"'
    )
    data = json.loads(answer.content)
    assert data["account"]["email"] == "marie@example.test"
    assert [a["reason"] for a in data["appointments"]] == ["Toux"]
    assert AuditEntry.objects.filter(action="privacy.export", actor_id=cast.marie.pk).exists()


def test_opening_the_export_address_leads_to_the_page_and_exports_nothing(cast: Cast) -> None:
    answer = signed_in(cast.marie).get("/compte/mes-donnees/export.json")
    assert (answer.status_code, answer["Location"]) == (302, "/compte/mes-donnees/")
    assert not AuditEntry.objects.filter(action="privacy.export").exists()


# --- My data: deletion ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"password": "not my password", "confirm": "on"}, "This is not your password."),
        ({"password": PASSWORD}, "Tick the box to confirm"),
        ({"confirm": "on"}, "This field is required."),
        ({"password": "x" * 5000, "confirm": "on"}, "at most 256 characters"),
    ],
)
def test_a_refused_deletion_explains_itself_and_writes_nothing(
    cast: Cast, booked: Appointment, form: dict[str, str], message: str
) -> None:
    client = signed_in(cast.marie)
    entries = AuditEntry.objects.count()
    page = client.post("/compte/mes-donnees/supprimer/", form)
    assert page.status_code == 422
    assert 'id="error-summary"' in page.text
    assert message in page.text
    assert User.objects.get(pk=cast.marie.pk).is_active
    assert Appointment.objects.get(pk=booked.pk).status == AppointmentStatus.BOOKED
    assert AuditEntry.objects.count() == entries
    assert client.get("/mes-rendez-vous/").status_code == 200  # still signed in


def test_deleting_my_account_signs_me_out_and_frees_my_time_for_someone_else(
    cast: Cast, booked: Appointment
) -> None:
    client = signed_in(cast.marie)
    answer = client.post("/compte/mes-donnees/supprimer/", {"password": PASSWORD, "confirm": "on"})
    assert (answer.status_code, answer["Location"]) == (302, "/compte/supprime/")
    confirmation = client.get("/compte/supprime/")
    assert confirmation.status_code == 200
    assert "Your account is deleted" in confirmation.text
    assert client.get("/compte/supprime/")["Location"] == "/"  # shown once
    assert client.get("/mes-rendez-vous/").status_code == 302  # signed out

    assert Slot.objects.get(pk=booked.slot_id).status == SlotStatus.FREE
    paul = signed_in(cast.paul)
    held = paul.post(f"/creneaux/{booked.slot_id}/retenir/", {"patient_id": cast.paul_self.pk})
    assert held.status_code == 302
    assert Slot.objects.get(pk=booked.slot_id).hold_owner_id == cast.paul.pk
    assert AuditEntry.objects.filter(action="account.delete", actor_id=cast.marie.pk).exists()

    sign_in = Client().post(
        "/compte/connexion/", {"email": "marie@example.test", "password": PASSWORD}
    )
    assert sign_in.status_code == 401


def test_clinic_staff_are_told_to_ask_their_clinic(cast: Cast) -> None:
    client = signed_in(cast.sophie)
    page = client.get("/compte/mes-donnees/")
    assert page.status_code == 200
    assert 'action="/compte/mes-donnees/supprimer/"' not in page.text
    refused = client.post("/compte/mes-donnees/supprimer/", {"password": PASSWORD, "confirm": "on"})
    assert refused.status_code == 403
    assert User.objects.get(pk=cast.sophie.pk).is_active


def test_the_confirmation_page_alone_leads_home(cast: Cast) -> None:
    assert Client().get("/compte/supprime/")["Location"] == "/"
