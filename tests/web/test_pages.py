"""The patient pages, through Django's test client: what each page answers, and the "no"s.

The same journeys run in a real browser in tests/e2e; these pin the server's answers
(status codes, what is written, what is refused) on both database engines.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from icalendar import Calendar

from rdv.accounts.models import Consent, User
from rdv.accounts.registration import TERMS_VERSION
from rdv.audit.models import AuditEntry
from rdv.patients.models import Patient
from rdv.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus
from tests.conftest import PASSWORD, Cast, local, make_slot, sent_mail


def signed_in(user: User, *, verified: bool = True) -> Client:
    if verified and user.email_verified_at is None:
        user.email_verified_at = local(2026, 11, 1, 9, 0)
        user.save(update_fields=["email_verified_at"])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def slot(cast: Cast) -> Slot:
    return make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))


def test_the_home_page_is_in_french_by_default_and_english_on_request(cast: Cast) -> None:
    french = Client().get("/")
    assert french.status_code == 200
    assert '<html lang="fr-CA">' in french.text
    assert "Trouver un rendez-vous médical" in french.text
    english = Client(headers={"accept-language": "en-CA,en;q=0.9"}).get("/")
    assert "Find a medical appointment" in english.text


def test_search_lists_the_earliest_slots_near_a_municipality(cast: Cast, slot: Slot) -> None:
    later = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0))
    page = Client().get("/", {"near": "Laval", "radius_km": "25"})
    assert page.status_code == 200
    text = page.text
    assert f"/creneaux/{slot.pk}/" in text
    assert text.index(f"/creneaux/{slot.pk}/") < text.index(f"/creneaux/{later.pk}/")
    assert "GMF Laval" in text


def test_an_empty_search_says_so_and_offers_to_widen_it(cast: Cast) -> None:
    page = Client(headers={"accept-language": "en"}).get("/", {"near": "Gaspé", "radius_km": "5"})
    assert page.status_code == 200
    assert "No free appointment matches your search" in page.text
    assert "radius_km=10" in page.text


@pytest.mark.parametrize(
    ("params", "field_text"),
    [
        ({"near": "Atlantis"}, "Unknown place"),
        ({"near": "Laval", "date_from": "2026-12-10", "date_to": "2026-12-01"}, "end date"),
        ({"near": "Laval", "radius_km": "9999"}, "Select a valid choice"),
        ({"near": "Laval", "date_from": "not-a-date"}, "Enter a valid date"),
        ({"near": "x" * 500}, "at most 100 characters"),
    ],
)
def test_bad_search_input_is_explained_not_a_server_error(
    cast: Cast, params: dict[str, str], field_text: str
) -> None:
    page = Client(headers={"accept-language": "en"}).get("/", params)
    assert page.status_code == 200
    assert 'role="alert"' in page.text
    assert field_text in page.text


def test_a_visitor_sees_a_slot_and_is_asked_to_sign_in(cast: Cast, slot: Slot) -> None:
    page = Client().get(f"/creneaux/{slot.pk}/")
    assert page.status_code == 200
    assert f"/compte/connexion/?next=/creneaux/{slot.pk}/" in page.text
    assert Client().post(f"/creneaux/{slot.pk}/retenir/").status_code == 302  # to sign-in
    slot.refresh_from_db()
    assert slot.hold_owner_id is None


def test_a_slot_reserved_for_registered_patients_is_hidden_from_others(cast: Cast) -> None:
    reserved = make_slot(cast.dr_roy, local(2026, 11, 25, 11, 0), visibility="registered")
    assert Client().get(f"/creneaux/{reserved.pk}/").status_code == 404
    assert signed_in(cast.paul).get(f"/creneaux/{reserved.pk}/").status_code == 404
    assert signed_in(cast.marie).get(f"/creneaux/{reserved.pk}/").status_code == 200


def test_hold_then_book_for_a_child(cast: Cast) -> None:
    child_slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0), appointment_type="child_0_5")
    client = signed_in(cast.marie)
    refused = client.post(f"/creneaux/{child_slot.pk}/retenir/", {"patient_id": cast.marie_self.pk})
    assert refused.status_code == 302  # back to the slot, with the reason as a message
    assert Slot.objects.get(pk=child_slot.pk).hold_owner_id is None
    held = client.post(f"/creneaux/{child_slot.pk}/retenir/", {"patient_id": cast.lea.pk})
    assert held["Location"] == f"/creneaux/{child_slot.pk}/?pour={cast.lea.pk}"
    page = client.get(held["Location"])
    assert 'data-countdown="300"' in page.text
    booked = client.post(
        "/creneaux/reserver/",
        {"slot_id": child_slot.pk, "patient_id": cast.lea.pk, "reason": "Vaccin de 4 ans"},
    )
    appointment = Appointment.objects.get(slot=child_slot)
    assert booked.status_code == 302
    assert booked["Location"] == f"/rendez-vous/{appointment.pk}/"
    assert (appointment.patient, appointment.reason) == (cast.lea, "Vaccin de 4 ans")
    detail = client.get(booked["Location"])
    assert "Léa" in detail.text
    assert "Vaccin de 4 ans" in detail.text


def test_losing_the_race_keeps_what_was_typed_and_offers_other_times(
    cast: Cast, slot: Slot
) -> None:
    other = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    marie = signed_in(cast.marie)
    marie.post(f"/creneaux/{slot.pk}/retenir/", {"patient_id": cast.marie_self.pk})
    paul = signed_in(cast.paul)
    typed = {"patient_id": cast.paul_self.pk, "reason": "Mal de dos depuis 3 jours"}
    page = paul.post(
        "/creneaux/reserver/", {"slot_id": slot.pk, **typed}, headers={"accept-language": "en"}
    )
    assert page.status_code == 409
    assert "Someone else is confirming this slot" in page.text
    assert "Mal de dos depuis 3 jours" in page.text
    assert f'name="slot_id" value="{other.pk}"' in page.text
    assert not Appointment.objects.exists()
    # One click on the offered time books it, with what was typed.
    paul.post("/creneaux/reserver/", {"slot_id": other.pk, **typed})
    assert Appointment.objects.get(slot=other).reason == "Mal de dos depuis 3 jours"


def test_booking_for_someone_elses_patient_is_refused(cast: Cast, slot: Slot) -> None:
    page = signed_in(cast.paul).post(
        "/creneaux/reserver/", {"slot_id": slot.pk, "patient_id": cast.lea.pk}
    )
    assert page.status_code == 422
    assert not Appointment.objects.exists()


def booked(cast: Cast, slot: Slot) -> tuple[Client, Appointment]:
    client = signed_in(cast.marie)
    client.post(f"/creneaux/{slot.pk}/retenir/", {"patient_id": cast.marie_self.pk})
    client.post("/creneaux/reserver/", {"slot_id": slot.pk, "patient_id": cast.marie_self.pk})
    return client, Appointment.objects.get(slot=slot)


def test_the_calendar_file_is_valid_icalendar(cast: Cast, slot: Slot) -> None:
    client, appointment = booked(cast, slot)
    response = client.get(f"/rendez-vous/{appointment.pk}/calendrier.ics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    body = response.content.decode()
    assert body.startswith("BEGIN:VCALENDAR\r\n")
    assert body.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    calendar = Calendar.from_ical(body)
    assert [timezone.tz_name for timezone in calendar.timezones] == ["America/Toronto"]
    [event] = calendar.events
    assert event["DTSTART"].params["TZID"] == "America/Toronto"
    assert event.start == slot.start
    assert event.start.strftime("%Y-%m-%d %H:%M") == "2026-11-25 09:00"  # Quebec wall clock
    assert event.end == slot.end
    assert str(event["LOCATION"]).startswith("GMF Laval")
    assert (
        signed_in(cast.paul).get(f"/rendez-vous/{appointment.pk}/calendrier.ics").status_code == 404
    )


def test_my_appointments_lists_upcoming_and_cancelled(cast: Cast, slot: Slot) -> None:
    client, appointment = booked(cast, slot)
    page = client.get("/mes-rendez-vous/")
    assert f"/rendez-vous/{appointment.pk}/" in page.text
    cancelled = client.post(f"/rendez-vous/{appointment.pk}/annuler/", {"reason": "Guéri"})
    assert cancelled.status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED
    slot.refresh_from_db()
    assert slot.status == SlotStatus.FREE
    page = client.get("/mes-rendez-vous/")
    assert "Annulé" in page.text


def test_cancelling_after_the_cutoff_is_refused_with_a_reason(cast: Cast) -> None:
    from rdv.core import clock  # noqa: PLC0415

    soon = make_slot(cast.dr_roy, local(2026, 11, 23, 20, 0))
    client, appointment = booked(cast, soon)
    with clock.frozen_now(clock.now() + timedelta(hours=1)):
        page = client.post(
            f"/rendez-vous/{appointment.pk}/annuler/", headers={"accept-language": "en"}
        )
    assert page.status_code == 422
    assert "can no longer be changed online" in page.text
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def test_moving_an_appointment_takes_the_new_slot_then_frees_the_old(
    cast: Cast, slot: Slot
) -> None:
    new = make_slot(cast.dr_roy, local(2026, 11, 27, 14, 0))
    client, appointment = booked(cast, slot)
    choose = client.get("/", {"near": "Laval", "reschedule": str(appointment.pk)})
    assert f'action="/rendez-vous/{appointment.pk}/deplacer/"' in choose.text
    moved = client.post(f"/rendez-vous/{appointment.pk}/deplacer/", {"new_slot_id": new.pk})
    assert moved.status_code == 302
    appointment.refresh_from_db()
    slot.refresh_from_db()
    assert (appointment.slot_id, slot.status) == (new.pk, SlotStatus.FREE)


def test_other_peoples_appointments_answer_404(cast: Cast, slot: Slot) -> None:
    _, appointment = booked(cast, slot)
    paul = signed_in(cast.paul)
    for path in ("", "calendrier.ics", "annuler/"):
        assert paul.get(f"/rendez-vous/{appointment.pk}/{path}").status_code == 404
    assert paul.post(f"/rendez-vous/{appointment.pk}/annuler/").status_code == 404
    assert (
        paul.post(f"/rendez-vous/{appointment.pk}/deplacer/", {"new_slot_id": slot.pk}).status_code
        == 404
    )
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.BOOKED


def code_from(message: mail.EmailMessage) -> str:
    found = re.search(r"\b(\d{6})\b", str(message.body))
    assert found is not None
    return found.group(1)


def sign_up(client: Client, **overrides: str) -> Any:
    data = {
        "first_name": "Nadia",
        "last_name": "Tremblay",
        "date_of_birth": "1990-04-12",
        "email": "nadia@example.test",
        "password": PASSWORD,
        "accept_terms": "on",
        "terms_version": TERMS_VERSION,
        **overrides,
    }
    return client.post("/compte/inscription/", data)


def test_sign_up_records_consent_and_confirms_the_email_with_a_code(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client)
    assert response.status_code == 302
    user = User.objects.get(email="nadia@example.test")
    assert Patient.objects.get(account=user, relationship="self").first_name == "Nadia"
    consents = Consent.objects.filter(user=user).values_list("document", "version", "language")
    assert set(consents) == {("terms", TERMS_VERSION, "fr"), ("privacy", TERMS_VERSION, "fr")}
    assert len(sent_mail()) == 1
    assert sent_mail()[0].to == ["nadia@example.test"]
    code = code_from(sent_mail()[0])
    wrong = "000000" if code != "000000" else "111111"
    assert client.post("/compte/confirmation/", {"code": wrong}).status_code == 422
    assert client.post("/compte/confirmation/", {"code": code}).status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at is not None
    actions = AuditEntry.objects.filter(actor_id=user.pk).values_list("action", "outcome")
    assert list(actions.order_by("id")) == [
        ("account.sign_up", "success"),
        ("account.verify_email", "failure"),
        ("account.verify_email", "success"),
    ]


def test_five_wrong_codes_spend_the_code(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        sign_up(client)
    code = code_from(sent_mail()[0])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        client.post("/compte/confirmation/", {"code": wrong})
    page = client.post("/compte/confirmation/", {"code": code}, headers={"accept-language": "en"})
    assert "expired" in page.text
    assert User.objects.get(email="nadia@example.test").email_verified_at is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"email": "marie@example.test"}, "already exists"),
        ({"password": "short"}, "at least 10 characters"),
        ({"date_of_birth": "2030-01-01"}, "in the future"),
        ({"accept_terms": ""}, "This field is required"),
        ({"terms_version": "1999-01-01"}, "terms of use have changed"),
        ({"email": "not-an-email"}, "valid email"),
    ],
)
def test_sign_up_refusals_write_nothing(
    cast: Cast, overrides: dict[str, str], message: str, django_capture_on_commit_callbacks: Any
) -> None:
    before = User.objects.count()
    client = Client(headers={"accept-language": "en"})
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client, **overrides)
    assert response.status_code in (409, 422)
    assert message in response.text
    assert User.objects.count() == before
    assert sent_mail() == []


def test_sign_in_returns_to_the_slot_and_sign_out_ends_the_session(cast: Cast, slot: Slot) -> None:
    client = Client()
    response = client.post(
        "/compte/connexion/",
        {"email": "MARIE@example.test", "password": PASSWORD, "next": f"/creneaux/{slot.pk}/"},
    )
    assert (response.status_code, response["Location"]) == (302, f"/creneaux/{slot.pk}/")
    assert client.get("/mes-rendez-vous/").status_code == 200
    client.post("/compte/deconnexion/")
    assert client.get("/mes-rendez-vous/").status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(cast: Cast) -> None:
    client = Client(headers={"accept-language": "en"})
    for email in ("marie@example.test", "nobody@example.test"):
        page = client.post("/compte/connexion/", {"email": email, "password": "nope nope nope"})
        assert page.status_code == 401
        assert "Incorrect email or password." in page.text


def test_sign_in_never_redirects_off_site(cast: Cast) -> None:
    response = Client().post(
        "/compte/connexion/",
        {"email": "marie@example.test", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == "/"


def test_the_language_choice_is_remembered_for_the_account(cast: Cast) -> None:
    client = signed_in(cast.marie)
    response = client.post("/langue/", {"language": "en", "next": "/mes-rendez-vous/"})
    assert response["Location"] == "/mes-rendez-vous/"
    cast.marie.refresh_from_db()
    assert cast.marie.preferred_language == "en"
    assert "My appointments" in client.get("/mes-rendez-vous/").text


def test_unknown_slots_and_malformed_posts_are_not_server_errors(cast: Cast, slot: Slot) -> None:
    client = signed_in(cast.marie)
    assert client.get("/creneaux/999999/").status_code == 404
    assert client.post("/creneaux/999999/retenir/").status_code == 404
    assert client.post(f"/creneaux/{slot.pk}/retenir/", {"patient_id": "x"}).status_code == 422
    assert client.post("/creneaux/reserver/", {"slot_id": "abc"}).status_code == 404
    assert client.post("/creneaux/reserver/", {"slot_id": 999999}).status_code == 404
    book = {"slot_id": slot.pk, "patient_id": "abc"}
    assert client.post("/creneaux/reserver/", book).status_code == 422
    book = {"slot_id": slot.pk, "patient_id": cast.marie_self.pk, "reason": "x" * 9999}
    assert client.post("/creneaux/reserver/", book).status_code == 422
    assert client.post("/langue/", {"language": "xx"}).status_code == 302
    assert not Appointment.objects.exists()


def test_sign_up_keeps_where_the_visitor_was_going(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = sign_up(client, next="/creneaux/7/?pour=3&x=1")
    assert (
        response["Location"] == "/compte/confirmation/?next=%2Fcreneaux%2F7%2F%3Fpour%3D3%26x%3D1"
    )


@pytest.mark.rate_limits
def test_a_locked_sign_in_answers_429_with_retry_after(cast: Cast) -> None:
    client = Client()
    for _ in range(5):
        client.post("/compte/connexion/", {"email": "paul@example.test", "password": "wrong wrong"})
    locked = client.post("/compte/connexion/", {"email": "paul@example.test", "password": PASSWORD})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
