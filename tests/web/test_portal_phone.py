"""The front desk books for a patient who phones: found by their health insurance number
(blind index), given one of the clinic's free times, told by the usual confirmation."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.core import clock
from rdv.notifications.models import Kind, Message
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling.models import Appointment, Visibility
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import UserFactory


def card_number(patient: Patient) -> str:
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    return f"{letters}{patient.date_of_birth:%y%m%d}11"


def staff(user: Any, language: str = "en") -> Client:
    return portal_client(user, language)


def find(client: Client, cast: Cast, number: str) -> Any:
    return client.post(f"/clinique/{cast.laval.pk}/telephone/", {"ramq_number": number})


def token_in(page: str) -> str:
    found = re.search(r'name="caller" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def choose(client: Client, cast: Cast, token: str) -> Any:
    return client.post(f"/clinique/{cast.laval.pk}/telephone/choisir/", {"caller": token})


def slots_page(client: Client, cast: Cast) -> Any:
    return client.get(f"/clinique/{cast.laval.pk}/telephone/creneaux/")


def give_card(patient: Patient) -> None:
    set_health_card(patient=patient, ramq_number=card_number(patient), card_sequence_number="01")


def test_the_caller_is_found_by_their_number_and_the_find_is_audited(cast: Cast) -> None:
    give_card(cast.marie_self)
    spaced = " ".join(re.findall(".{1,4}", card_number(cast.marie_self).lower()))
    response = find(staff(cast.sophie), cast, spaced)
    assert response.status_code == 200
    page = response.content.decode()
    assert cast.marie_self.last_name in page
    assert "Paul" not in page
    assert "ramq_number=" not in page  # the number never goes into an address
    entry = AuditEntry.objects.get(action="patient.lookup")
    assert (entry.actor_id, entry.patient_id, entry.clinic_id) == (
        cast.sophie.pk,
        cast.marie_self.pk,
        cast.laval.pk,
    )


def test_a_malformed_number_is_explained_and_an_unknown_one_finds_nobody(cast: Cast) -> None:
    client = staff(cast.sophie)
    bad = find(client, cast, "12345")
    assert bad.status_code == 422
    assert "4 letters followed by 8 digits" in bad.content.decode()
    nobody = find(client, cast, "ZZZZ80010111")
    assert nobody.status_code == 200
    assert "Nobody with this health insurance number" in nobody.content.decode()
    assert not AuditEntry.objects.filter(action="patient.lookup").exists()


def test_the_receptionist_books_one_of_the_clinics_times_for_the_caller(cast: Cast) -> None:
    give_card(cast.marie_self)
    laval = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))
    make_slot(cast.montreal_doctor, local(2026, 11, 24, 9, 0))  # another clinic's
    client = staff(cast.sophie)
    chosen = choose(
        client, cast, token_in(find(client, cast, card_number(cast.marie_self)).content.decode())
    )
    assert chosen.status_code == 302
    slots = slots_page(client, cast)
    assert slots.status_code == 200
    assert f'name="slot_id" value="{laval.pk}"' in slots.content.decode()
    assert slots.content.decode().count('name="slot_id"') == 1
    booked = client.post(
        f"/clinique/{cast.laval.pk}/telephone/reserver/",
        {"patient_id": cast.marie_self.pk, "slot_id": laval.pk},
    )
    assert booked.status_code == 302
    assert booked["Location"].endswith("?date=2026-11-24")
    appointment = Appointment.objects.get(slot=laval)
    assert (appointment.patient_id, appointment.booked_by_id) == (
        cast.marie_self.pk,
        cast.sophie.pk,
    )
    assert Message.objects.filter(appointment=appointment, kind=Kind.BOOKED).exists()
    entry = AuditEntry.objects.get(action="appointment.book", object_id=str(appointment.pk))
    assert entry.actor_role == "receptionist"
    assert slots_page(client, cast).status_code == 302  # the call is over: step 1 again


def test_a_time_reserved_for_another_doctors_patients_is_not_offered_or_taken(
    cast: Cast,
) -> None:
    paul = cast.paul_self  # no family doctor
    give_card(paul)
    reserved = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0), visibility=Visibility.REGISTERED)
    client = staff(cast.sophie)
    choose(client, cast, token_in(find(client, cast, card_number(paul)).content.decode()))
    assert f'name="slot_id" value="{reserved.pk}"' not in slots_page(client, cast).content.decode()
    taken = client.post(
        f"/clinique/{cast.laval.pk}/telephone/reserver/",
        {"patient_id": paul.pk, "slot_id": reserved.pk},
    )
    assert taken.status_code == 409
    assert not Appointment.objects.filter(slot=reserved).exists()


def test_a_caller_is_chosen_only_with_a_token_of_this_clinic_and_staff_member(
    cast: Cast,
) -> None:
    give_card(cast.marie_self)
    token = token_in(find(staff(cast.sophie), cast, card_number(cast.marie_self)).content.decode())
    for client, tampered in (
        (staff(cast.marc), token),  # another member of the same clinic
        (staff(cast.sophie), token[:-2] + ("AA" if not token.endswith("AA") else "BB")),
        (staff(cast.sophie), "x" * 290),
    ):
        assert choose(client, cast, tampered).status_code == 404
        assert slots_page(client, cast).status_code == 302  # nobody chosen: step 1


def test_the_chosen_caller_lapses_after_half_an_hour(cast: Cast) -> None:
    give_card(cast.marie_self)
    client = staff(cast.sophie)
    choose(
        client, cast, token_in(find(client, cast, card_number(cast.marie_self)).content.decode())
    )
    with clock.frozen_now(clock.now() + timedelta(minutes=29)):
        assert slots_page(client, cast).status_code == 200
    with clock.frozen_now(clock.now() + timedelta(minutes=31)):
        assert slots_page(client, cast).status_code == 302


def test_a_page_shown_for_one_caller_does_not_book_another(cast: Cast) -> None:
    give_card(cast.marie_self)
    give_card(cast.paul_self)
    slot = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))
    client = staff(cast.sophie)
    choose(
        client, cast, token_in(find(client, cast, card_number(cast.marie_self)).content.decode())
    )
    # Another tab: Paul phones and is chosen; the first tab still shows Marie's times.
    choose(client, cast, token_in(find(client, cast, card_number(cast.paul_self)).content.decode()))
    stale = client.post(
        f"/clinique/{cast.laval.pk}/telephone/reserver/",
        {"patient_id": cast.marie_self.pk, "slot_id": slot.pk},
    )
    assert stale.status_code == 409
    assert not Appointment.objects.exists()


@pytest.mark.rate_limits
def test_looking_callers_up_is_limited_per_staff_member(cast: Cast, settings: Any) -> None:
    settings.RATE_LIMITS = {"caller_lookup": "2/h"}
    client = staff(cast.sophie)
    answers = [find(client, cast, "ZZZZ80010111").status_code for _ in range(3)]
    assert answers == [200, 200, 429]


def test_practitioners_do_not_book_for_callers(cast: Cast) -> None:
    doctor = UserFactory.create(email="roy@example.test")
    Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    assert find(staff(doctor), cast, "ABCD80010111").status_code == 403


# --- A caller without their card: surname and date of birth --------------------------------


def find_by_identity(client: Client, cast: Cast, **fields: str) -> Any:
    return client.post(
        f"/clinique/{cast.laval.pk}/telephone/", {f"who-{k}": v for k, v in fields.items()}
    )


def test_the_index_follows_a_change_of_surname_or_birth_date(cast: Cast) -> None:
    from rdv.patients.identity import identity_index  # noqa: PLC0415

    marie = cast.marie_self
    marie.last_name = "Côté-Tremblay"
    marie.save(update_fields=["last_name"])
    marie.refresh_from_db()
    assert marie.identity_blind_index == identity_index("COTE TREMBLAY", marie.date_of_birth)
    assert marie.identity_blind_index != identity_index("Tremblay", marie.date_of_birth)
    # The index is keyed: neither the name nor the date appears in it.
    assert "COTE" not in marie.identity_blind_index.upper()


def test_a_caller_without_their_card_is_found_by_surname_and_birth_date(cast: Cast) -> None:
    marie = cast.marie_self
    marie.last_name, marie.date_of_birth = "Tremblay", date(1988, 4, 12)
    marie.save(update_fields=["last_name", "date_of_birth"])
    born = marie.date_of_birth.isoformat()
    client = staff(cast.sophie)
    # Accents, capitals and hyphens do not matter, as on the card.
    shouted = marie.last_name.upper().replace("E", "É")
    found = find_by_identity(client, cast, last_name=shouted, date_of_birth=born)
    assert found.status_code == 200
    page = found.content.decode()
    assert marie.first_name in page
    token = token_in(page)
    assert choose(client, cast, token).status_code == 302
    assert marie.last_name in slots_page(client, cast).content.decode()
    entry = AuditEntry.objects.get(action="patient.lookup")
    assert (entry.actor_id, entry.patient_id) == (cast.sophie.pk, marie.pk)


def test_the_first_name_narrows_and_a_wrong_date_finds_nobody(cast: Cast) -> None:
    marie = cast.marie_self
    born = marie.date_of_birth.isoformat()
    client = staff(cast.sophie)
    # Marie and Paul share a surname and a birth date: both are offered, then one.
    both = find_by_identity(client, cast, last_name=marie.last_name, date_of_birth=born)
    assert "Marie" in both.content.decode()
    assert "Paul" in both.content.decode()
    narrowed = find_by_identity(
        client, cast, last_name=marie.last_name, first_name="mar", date_of_birth=born
    )
    assert "Marie" in narrowed.content.decode()
    assert "Paul" not in narrowed.content.decode()
    lookups = AuditEntry.objects.filter(action="patient.lookup").count()
    assert lookups == 3  # each person shown, each time
    other = find_by_identity(
        client, cast, last_name=marie.last_name, first_name="Zoé", date_of_birth=born
    )
    assert other.status_code == 200
    assert "Nobody with this surname and date of birth" in other.content.decode()
    day_after = (marie.date_of_birth + timedelta(days=1)).isoformat()
    wrong = find_by_identity(client, cast, last_name=marie.last_name, date_of_birth=day_after)
    assert marie.first_name not in wrong.content.decode()
    assert AuditEntry.objects.filter(action="patient.lookup").count() == lookups


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"last_name": "Tremblay", "date_of_birth": "2999-01-01"}, "in the future"),
        ({"last_name": "Tremblay", "date_of_birth": "1988-13-45"}, "Enter a valid date"),
        ({"last_name": "", "date_of_birth": "1988-04-12"}, "This field is required"),
        ({"last_name": "---", "date_of_birth": "1988-04-12"}, "Enter the caller&#x27;s surname"),
    ],
)
def test_bad_identity_searches_are_explained(
    cast: Cast, fields: dict[str, str], message: str
) -> None:
    response = find_by_identity(staff(cast.sophie), cast, **fields)
    assert response.status_code == 422
    assert message in response.content.decode()


def test_the_identity_search_is_explained_in_french(cast: Cast) -> None:
    response = find_by_identity(
        staff(cast.sophie, "fr"), cast, last_name="Tremblay", date_of_birth="2999-01-01"
    )
    assert response.status_code == 422
    assert "La date de naissance est dans le futur" in response.content.decode()


@pytest.mark.rate_limits
def test_identity_searches_share_the_look_up_limit(cast: Cast, settings: Any) -> None:
    settings.RATE_LIMITS = {"caller_lookup": "2/h"}
    client = staff(cast.sophie)
    answers = [
        find(client, cast, "ZZZZ80010111").status_code,
        find_by_identity(client, cast, last_name="X", date_of_birth="1980-01-01").status_code,
        find_by_identity(client, cast, last_name="X", date_of_birth="1980-01-02").status_code,
    ]
    assert answers == [200, 200, 429]


def test_practitioners_do_not_search_by_identity(cast: Cast) -> None:
    doctor = UserFactory.create(email="roy@example.test")
    Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    response = find_by_identity(
        staff(doctor), cast, last_name="Tremblay", date_of_birth="1988-04-12"
    )
    assert response.status_code == 403
