"""A visitor's hold kept through sign-up and sign-in; family visits through the pages."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from django.test import Client

from rdv.accounts.models import User
from rdv.patients.models import Patient
from rdv.scheduling.models import Appointment, Slot, SlotStatus
from tests.conftest import PASSWORD, Cast, local, make_slot, sent_mail
from tests.factories import PatientFactory
from tests.web.test_pages import code_from, sign_up, signed_in

ENGLISH = {"accept-language": "en"}


@pytest.fixture
def slot(cast: Cast) -> Slot:
    return make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))


def test_a_visitor_holds_a_slot_before_having_an_account(cast: Cast, slot: Slot) -> None:
    visitor = Client(headers=ENGLISH)
    page = visitor.get(f"/creneaux/{slot.pk}/")
    assert "Hold this time" in page.text
    assert 'name="patient_id"' not in page.text
    assert visitor.post(f"/creneaux/{slot.pk}/retenir/").status_code == 302
    held = visitor.get(f"/creneaux/{slot.pk}/")
    assert "held for you" in held.text
    assert "data-countdown" in held.text
    assert "/compte/inscription/?next=" in held.text
    # Someone else sees it taken, not held for them.
    other = Client(headers=ENGLISH).get(f"/creneaux/{slot.pk}/")
    assert "held for you" not in other.text


def test_the_hold_survives_sign_up_and_confirmation_then_books(
    cast: Cast, slot: Slot, django_capture_on_commit_callbacks: Any
) -> None:
    visitor = Client(headers=ENGLISH)
    visitor.post(f"/creneaux/{slot.pk}/retenir/")
    with django_capture_on_commit_callbacks(execute=True):
        assert sign_up(visitor).status_code == 302
    nadia = User.objects.get(email="nadia@example.test")
    slot.refresh_from_db()
    assert (slot.hold_owner_id, slot.hold_visitor) == (nadia.pk, None)
    # Not confirmed yet: the page keeps the hold and asks for the code, and booking is refused.
    waiting = visitor.get(f"/creneaux/{slot.pk}/")
    assert "Confirm your email address to book it" in waiting.text
    me = Patient.objects.get(account=nadia, relationship="self")
    refused = visitor.post("/creneaux/reserver/", {"slot_id": slot.pk, "patient_id": me.pk})
    assert refused.status_code == 403
    assert "Confirm your email address before booking" in refused.text
    assert not Appointment.objects.exists()
    code = code_from(sent_mail()[0])
    next_url = f"/creneaux/{slot.pk}/"
    confirmed = visitor.post(f"/compte/confirmation/?next={next_url}", {"code": code})
    assert confirmed["Location"] == next_url
    ready = visitor.get(next_url)
    assert "Confirm below to book it" in ready.text
    booked = visitor.post("/creneaux/reserver/", {"slot_id": slot.pk, "patient_id": me.pk})
    assert booked.status_code == 302
    assert Appointment.objects.get().patient == me


def test_signing_in_claims_the_hold(cast: Cast, slot: Slot) -> None:
    visitor = Client()
    visitor.post(f"/creneaux/{slot.pk}/retenir/")
    signed = visitor.post(
        "/compte/connexion/",
        {"email": "paul@example.test", "password": PASSWORD, "next": f"/creneaux/{slot.pk}/"},
    )
    assert signed.status_code == 302
    slot.refresh_from_db()
    assert slot.hold_owner_id == cast.paul.pk


def test_a_visitor_cannot_take_a_slot_someone_holds(cast: Cast, slot: Slot) -> None:
    Client().post(f"/creneaux/{slot.pk}/retenir/")
    late = Client(headers=ENGLISH).post(f"/creneaux/{slot.pk}/retenir/")
    assert late.status_code == 409
    assert "Someone else is confirming this slot" in late.text


# --- Family visits -------------------------------------------------------------------------


@pytest.fixture
def noah(cast: Cast) -> Patient:
    return PatientFactory.create(
        account=cast.marie,
        relationship=Patient.Relationship.CHILD,
        first_name="Noah",
        date_of_birth=date(2018, 3, 4),
    )


def family_search(client: Client, *patients: Patient) -> Any:
    return client.get(
        "/visite-familiale/",
        {"near": "Laval", "radius_km": "25", "patients": [str(p.pk) for p in patients]},
        headers=ENGLISH,
    )


def test_a_parent_finds_and_books_back_to_back_times_for_two_children(
    cast: Cast, noah: Patient
) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))
    marie = signed_in(cast.marie)
    assert "/visite-familiale/" in marie.get("/").text
    results = family_search(marie, cast.lea, noah)
    assert results.status_code == 200
    link = f"slots={first.pk},{second.pk}&amp;patients="
    assert link in results.text
    pairs = {"slots": f"{first.pk},{second.pk}"}
    ordered = [cast.lea.pk, noah.pk]
    confirm = marie.get(
        "/visite-familiale/reserver/",
        {**pairs, "patients": ",".join(map(str, ordered))},
        headers=ENGLISH,
    )
    assert "Book these 2 appointments" in confirm.text
    booked = marie.post(
        "/visite-familiale/reserver/",
        {**pairs, "patients": ",".join(map(str, ordered)), "reason_1": "Vaccin"},
    )
    assert booked.status_code == 302
    assert booked["Location"] == "/mes-rendez-vous/"
    made = {(a.patient_id, a.slot_id, a.reason) for a in Appointment.objects.all()}
    assert made == {(cast.lea.pk, first.pk, ""), (noah.pk, second.pk, "Vaccin")}


def test_a_lost_family_visit_answers_409_and_books_no_one(cast: Cast, noah: Patient) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))
    signed_in(cast.paul).post(
        "/creneaux/reserver/", {"slot_id": second.pk, "patient_id": cast.paul_self.pk}
    )
    page = signed_in(cast.marie).post(
        "/visite-familiale/reserver/",
        {"slots": f"{first.pk},{second.pk}", "patients": f"{cast.lea.pk},{noah.pk}"},
        headers=ENGLISH,
    )
    assert page.status_code == 409
    assert "Nothing was booked" in page.text
    assert Slot.objects.get(pk=first.pk).status == SlotStatus.FREE
    assert not Appointment.objects.filter(patient__account=cast.marie).exists()


@pytest.mark.parametrize(
    "data",
    [
        {"slots": "1,x", "patients": "1,2"},
        {"slots": "1", "patients": "1"},
        {"slots": "1,2,3", "patients": "1,2"},
        {"slots": "", "patients": ""},
        {"slots": "-1,2", "patients": "1,2"},
    ],
)
def test_a_garbled_family_choice_goes_back_to_the_search(cast: Cast, data: dict[str, str]) -> None:
    page = signed_in(cast.marie).post("/visite-familiale/reserver/", data)
    assert page.status_code == 302
    assert page["Location"] == "/visite-familiale/"
    assert not Appointment.objects.exists()


def test_someone_elses_patient_in_a_family_choice_answers_404(cast: Cast, noah: Patient) -> None:
    slots = [make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30 * i)) for i in range(2)]
    page = signed_in(cast.marie).post(
        "/visite-familiale/reserver/",
        {"slots": f"{slots[0].pk},{slots[1].pk}", "patients": f"{noah.pk},{cast.paul_self.pk}"},
    )
    assert page.status_code == 404
    assert not Appointment.objects.exists()


def test_the_family_search_needs_two_people(cast: Cast, noah: Patient) -> None:
    page = family_search(signed_in(cast.marie), noah)
    assert page.status_code == 200
    assert "Choose between 2 and 6 people" in page.text
