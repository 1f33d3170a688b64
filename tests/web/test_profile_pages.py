"""The profile and family-member pages, through Django's test client: what each answers,
what is written, and every "no" (Paul never reaches Marie's people).

tests/e2e/test_profile_and_dependants.py runs the same pages in a real browser.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest
from django.test import Client
from django.utils import translation
from django.utils.translation import gettext

from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.core.errors import NotFound
from rdv.patients import services
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from tests.conftest import Cast, local, make_slot
from tests.factories import PractitionerFactory

RAMQ = "TREM88041211"  # Marie Tremblay, born 1988-04-12


def signed_in(user: User, language: str = "fr") -> Client:
    user.email_verified_at = local(2026, 11, 1, 9, 0)
    user.save(update_fields=["email_verified_at"])
    client = Client(headers={"accept-language": language})
    client.force_login(user)
    return client


def in_french(message: str) -> str:
    with translation.override("fr"):
        return gettext(message)


def field_errors(html: str, field: str) -> list[str]:
    return re.findall(rf'<p class="field-error" id="id_{field}_error">([^<]*)</p>', html)


def profile_form(**changes: Any) -> dict[str, Any]:
    values = {
        "section": "person",
        "first_name": "Marie",
        "last_name": "Tremblay",
        "last_name_at_birth": "",
        "date_of_birth": "1988-04-12",
        "phone": "450 555-0142",
        "ramq_number": "TREM 8804 1211",
        "card_sequence_number": "01",
        "family_doctor": "",
    }
    return {**values, **changes}


def child_form(**changes: Any) -> dict[str, Any]:
    values = {
        "relationship": "child",
        "first_name": "Noé",
        "last_name": "Tremblay",
        "last_name_at_birth": "",
        "date_of_birth": "2021-03-09",
        "ramq_number": "TREN 2103 0912",
        "card_sequence_number": "01",
        "family_doctor": "",
    }
    return {**values, **changes}


def for_whom_choices(client: Client) -> dict[int, str]:
    """The people offered in the search page's "For" select (patient_id), by id."""
    page = client.get("/")
    select = re.search(r'<select name="patient_id"[^>]*>(.*?)</select>', page.text, re.S)
    assert select is not None, "no patient_id select on the search page"
    options = re.findall(r'<option value="(\d+)"[^>]*>([^<]*)</option>', select.group(1))
    return {int(value): label for value, label in options}


def lea_was_seen_on_november_10(cast: Cast) -> None:
    past = make_slot(cast.dr_roy, local(2026, 11, 10, 9, 0))
    with clock.frozen_now(local(2026, 11, 1, 9, 0)):
        scheduling.book_appointment(user=cast.marie, slot_id=past.pk, patient_id=cast.lea.pk)


# --- Profile ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/compte/profil/",
        "/compte/proches/",
        "/compte/proches/ajouter/",
        "/compte/proches/1/",
        "/compte/proches/1/retirer/",
    ],
)
def test_the_pages_ask_a_visitor_to_sign_in(cast: Cast, path: str) -> None:
    page = Client().get(path)
    assert page.status_code == 302
    assert page["Location"].startswith("/compte/connexion/?next=")


def test_the_profile_shows_my_details_and_my_email_read_only(cast: Cast) -> None:
    page = signed_in(cast.marie).get("/compte/profil/")
    assert page.status_code == 200
    assert "marie@example.test" in page.text
    assert 'name="email"' not in page.text
    assert 'value="Marie"' in page.text
    assert 'autocomplete="given-name"' in page.text
    assert 'autocomplete="tel"' in page.text
    # Dr Roy takes no new patients, but he is Marie's: he stays on offer, chosen.
    assert re.search(
        rf'<option value="{cast.dr_roy.pk}" selected>Dr Jean Roy — GMF Laval', page.text
    )
    # No phone yet: text messages cannot be chosen.
    assert re.search(r'<input type="checkbox" name="notify_by_sms"[^>]*disabled', page.text)


def test_saving_the_profile_writes_it_and_audits_it(cast: Cast) -> None:
    client = signed_in(cast.marie)
    saved = client.post("/compte/profil/", profile_form(family_doctor=str(cast.dr_roy.pk)))
    assert saved.status_code == 302
    assert saved["Location"] == "/compte/profil/"
    marie = Patient.objects.get(pk=cast.marie_self.pk)
    assert (marie.last_name, marie.date_of_birth) == ("Tremblay", date(1988, 4, 12))
    assert (marie.phone, marie.ramq_number, marie.card_sequence_number) == (
        "+14505550142",
        RAMQ,
        "01",
    )
    assert marie.family_doctor_id == cast.dr_roy.pk
    assert AuditEntry.objects.filter(
        action="patient.update", actor_id=cast.marie.pk, patient_id=marie.pk
    ).exists()
    again = client.get("/compte/profil/")
    assert in_french("Your information is saved.") in again.text
    assert 'value="(450) 555-0142"' in again.text
    assert 'value="TREM 8804 1211"' in again.text


@pytest.mark.parametrize(
    ("changes", "field", "english", "french"),
    [
        (
            {"date_of_birth": "1988-04-13"},
            "ramq_number",
            "The health insurance number does not match the day of birth.",
            "Le numéro d’assurance maladie ne correspond pas au jour de naissance.",
        ),
        (
            {"ramq_number": "TREM 8804"},
            "ramq_number",
            "A health insurance number is 4 letters followed by 8 digits.",
            "Un numéro d’assurance maladie compte 4 lettres suivies de 8 chiffres.",
        ),
        (
            {"phone": "555-12"},
            "phone",
            "Enter a valid phone number, for example 514 555-0123.",
            None,
        ),
        (
            {"date_of_birth": "2030-01-01", "ramq_number": ""},
            "date_of_birth",
            "The date of birth is in the future.",
            "La date de naissance est dans le futur.",
        ),
        (
            {"date_of_birth": "1900-01-01", "ramq_number": ""},
            "date_of_birth",
            "The date of birth is more than 120 years ago.",
            None,
        ),
    ],
)
def test_bad_profile_input_is_explained_on_its_field_in_both_languages_and_not_saved(
    cast: Cast, changes: dict[str, str], field: str, english: str, french: str | None
) -> None:
    before = Patient.objects.get(pk=cast.marie_self.pk)
    for language, message in (("en", english), ("fr", french or in_french(english))):
        page = signed_in(cast.marie, language).post("/compte/profil/", profile_form(**changes))
        assert page.status_code == 422
        assert field_errors(page.text, field) == [message]
        assert 'role="alert"' in page.text
    after = Patient.objects.get(pk=cast.marie_self.pk)
    assert (after.date_of_birth, after.phone, after.ramq_number) == (
        before.date_of_birth,
        before.phone,
        before.ramq_number,
    )
    assert not AuditEntry.objects.filter(action="patient.update").exists()


def test_preferences_change_the_language_and_how_i_am_told(cast: Cast) -> None:
    client = signed_in(cast.marie)
    client.post("/compte/profil/", profile_form())
    saved = client.post(
        "/compte/profil/",
        {
            "section": "preferences",
            "preferred_language": "en",
            "notify_by_email": "on",
            "notify_by_sms": "on",
        },
    )
    assert saved.status_code == 302
    assert saved.cookies["django_language"].value == "en"
    marie = User.objects.get(pk=cast.marie.pk)
    assert (marie.preferred_language, marie.notify_by_email, marie.notify_by_sms) == (
        "en",
        True,
        True,
    )
    assert not marie.reminders
    page = client.get("/compte/profil/")
    assert '<html lang="en-CA">' in page.text
    assert "Your preferences are saved." in page.text
    assert AuditEntry.objects.filter(action="account.preferences").count() == 1


def test_with_no_channel_left_nothing_is_saved(cast: Cast) -> None:
    page = signed_in(cast.marie, "en").post(
        "/compte/profil/", {"section": "preferences", "preferred_language": "fr"}
    )
    assert page.status_code == 422
    assert field_errors(page.text, "notify_by_email") == [
        "Choose at least one way to reach you: email or text message."
    ]
    assert User.objects.get(pk=cast.marie.pk).notify_by_email


# --- Family members ---------------------------------------------------------------------


def test_a_parent_adds_a_child_who_can_then_be_booked_for(cast: Cast) -> None:
    client = signed_in(cast.marie)
    assert "Noé Tremblay" not in for_whom_choices(client).values()
    added = client.post("/compte/proches/ajouter/", child_form())
    assert added.status_code == 302
    assert added["Location"] == "/compte/proches/"
    noe = Patient.objects.get(account=cast.marie, first_name="Noé")
    assert (noe.relationship, noe.ramq_number) == ("child", "TREN21030912")
    listing = client.get("/compte/proches/")
    assert "Noé Tremblay" in listing.text
    assert f"/compte/proches/{noe.pk}/" in listing.text
    assert for_whom_choices(client)[noe.pk] == "Noé Tremblay"
    assert AuditEntry.objects.filter(action="patient.create", patient_id=noe.pk).exists()
    # Paul sees none of Marie's people.
    paul = signed_in(cast.paul)
    assert "Noé" not in paul.get("/compte/proches/").text
    assert list(for_whom_choices(paul)) == [cast.paul_self.pk]


def test_a_child_whose_card_does_not_fit_is_explained_and_not_added(cast: Cast) -> None:
    for language, message in (
        ("en", "The health insurance number does not match the day of birth."),
        ("fr", "Le numéro d’assurance maladie ne correspond pas au jour de naissance."),
    ):
        page = signed_in(cast.marie, language).post(
            "/compte/proches/ajouter/", child_form(date_of_birth="2021-03-10")
        )
        assert page.status_code == 422
        assert field_errors(page.text, "ramq_number") == [message]
    assert not Patient.objects.filter(first_name="Noé").exists()


def test_a_family_doctor_cannot_be_named_by_the_patient(cast: Cast) -> None:
    accepting = PractitionerFactory.create(clinic=cast.laval, accepting_new_patients=True)
    for doctor in (cast.dr_roy, accepting):
        page = signed_in(cast.marie, "en").post(
            "/compte/proches/ajouter/", child_form(family_doctor=str(doctor.pk))
        )
        assert page.status_code == 422
        assert field_errors(page.text, "family_doctor")
    assert not Patient.objects.filter(first_name="Noé").exists()


def test_editing_a_child_saves_the_change(cast: Cast) -> None:
    client = signed_in(cast.marie)
    form = client.get(f"/compte/proches/{cast.lea.pk}/")
    assert form.status_code == 200
    assert 'value="Léa"' in form.text
    saved = client.post(
        f"/compte/proches/{cast.lea.pk}/",
        child_form(
            first_name="Léa", date_of_birth="2023-06-01", ramq_number="", card_sequence_number=""
        ),
    )
    assert saved.status_code == 302
    lea = Patient.objects.get(pk=cast.lea.pk)
    assert (lea.last_name, lea.family_doctor_id) == ("Tremblay", None)


def test_every_family_member_page_answers_404_for_someone_elses_person(cast: Cast) -> None:
    paul = signed_in(cast.paul)
    marie = signed_in(cast.marie)
    for client, patient_id in (
        (paul, cast.lea.pk),
        (paul, cast.marie_self.pk),
        (marie, cast.paul_self.pk),
        (marie, cast.marie_self.pk),  # the holder is not a family member
        (marie, 10**9),
    ):
        for path in (f"/compte/proches/{patient_id}/", f"/compte/proches/{patient_id}/retirer/"):
            assert client.get(path).status_code == 404, path
            assert client.post(path, child_form()).status_code == 404, path
    lea = Patient.objects.get(pk=cast.lea.pk)
    assert (lea.first_name, lea.archived_at) == ("Léa", None)
    assert Patient.objects.filter(pk=cast.paul_self.pk).exists()


def test_a_child_with_an_upcoming_appointment_is_not_removed(cast: Cast) -> None:
    client = signed_in(cast.marie, "en")
    scheduling.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0)).pk,
        patient_id=cast.lea.pk,
    )
    page = client.post(f"/compte/proches/{cast.lea.pk}/retirer/")
    assert page.status_code == 409
    assert "This person has an upcoming appointment." in page.text
    assert Patient.objects.get(pk=cast.lea.pk).archived_at is None
    assert f"/compte/proches/{cast.lea.pk}/retirer/" in client.get("/compte/proches/").text


def test_removing_a_child_never_seen_deletes_them(cast: Cast) -> None:
    client = signed_in(cast.marie)
    confirm = client.get(f"/compte/proches/{cast.lea.pk}/retirer/")
    assert confirm.status_code == 200
    removed = client.post(f"/compte/proches/{cast.lea.pk}/retirer/")
    assert removed.status_code == 302
    assert removed["Location"] == "/compte/proches/"
    assert not Patient.objects.filter(pk=cast.lea.pk).exists()
    assert list(for_whom_choices(client)) == [cast.marie_self.pk]
    assert AuditEntry.objects.filter(action="patient.remove", patient_id=cast.lea.pk).exists()


def test_a_child_seen_before_is_hidden_from_the_family_pages_but_kept(cast: Cast) -> None:
    client = signed_in(cast.marie)
    lea_was_seen_on_november_10(cast)
    assert client.post(f"/compte/proches/{cast.lea.pk}/retirer/").status_code == 302
    assert Patient.objects.get(pk=cast.lea.pk).archived_at is not None
    assert f"/compte/proches/{cast.lea.pk}/" not in client.get("/compte/proches/").text
    assert client.get(f"/compte/proches/{cast.lea.pk}/").status_code == 404


def test_a_child_seen_before_and_removed_is_no_longer_offered_for_booking(cast: Cast) -> None:
    client = signed_in(cast.marie)
    lea_was_seen_on_november_10(cast)
    client.post(f"/compte/proches/{cast.lea.pk}/retirer/")
    assert list(for_whom_choices(client)) == [cast.marie_self.pk]
    later = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    with pytest.raises(NotFound):
        scheduling.book_appointment(user=cast.marie, slot_id=later.pk, patient_id=cast.lea.pk)


def test_at_most_twelve_family_members_are_offered(cast: Cast) -> None:
    for n in range(services.MAX_DEPENDANTS - 1):
        services.add_dependant(
            user=cast.marie,
            relationship="child",
            first_name=f"Enfant{n}",
            last_name="Tremblay",
            date_of_birth=date(2020, 1, 1),
        )
    client = signed_in(cast.marie, "en")
    listing = client.get("/compte/proches/")
    assert "/compte/proches/ajouter/" not in listing.text
    assert "at most 12 family members" in listing.text
    page = client.post("/compte/proches/ajouter/", child_form())
    assert page.status_code == 422
    assert "You can book for at most 12 family members." in page.text
