"""A new visitor finds, books, moves and cancels an appointment, in a real Chromium.

French first, then English; each page is audited for accessibility and photographed at
desktop and phone widths (var/test-artifacts/screenshots).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from rdv.scheduling.models import Appointment, AppointmentStatus
from tests.conftest import PASSWORD, local, make_slot
from tests.e2e.support import Inbox, PageFactory, assert_accessible, screenshot
from tests.factories import ClinicFactory, PractitionerFactory

pytestmark = pytest.mark.django_db(transaction=True)

WORDS = {
    "fr": {
        "place": "Municipalité ou code postal",
        "search": "Rechercher",
        "choose": "Choisir cette heure",
        "create": "Créer un compte",
        "first": "Prénom",
        "last": "Nom de famille",
        "birth": "Date de naissance",
        "email": "Courriel",
        "password": "Mot de passe",
        "terms": "J’ai lu et j’accepte les conditions d’utilisation.",
        "create_mine": "Créer mon compte",
        "code": "Code de confirmation",
        "confirm": "Confirmer",
        "hold": "Retenir cette heure",
        "reason": "Motif de la consultation (facultatif)",
        "book": "Réserver ce rendez-vous",
        "booked": "Votre rendez-vous est réservé.",
        "ics": "Ajouter à mon agenda (.ics)",
        "change": "Changer l’heure",
        "move_here": "Déplacer mon rendez-vous ici",
        "moved": "Votre rendez-vous a été déplacé.",
        "cancel": "Annuler le rendez-vous",
        "cancelled": "Votre rendez-vous est annulé.",
        "mine": "Mes rendez-vous",
    },
    "en": {
        "place": "Municipality or postal code",
        "search": "Search",
        "choose": "Choose this time",
        "create": "Create an account",
        "first": "First name",
        "last": "Last name",
        "birth": "Date of birth",
        "email": "Email",
        "password": "Password",
        "terms": "I have read and accept the terms of use.",
        "create_mine": "Create my account",
        "code": "Confirmation code",
        "confirm": "Confirm",
        "hold": "Hold this time",
        "reason": "Reason for the visit (optional)",
        "book": "Book this appointment",
        "booked": "Your appointment is booked.",
        "ics": "Add to my calendar (.ics)",
        "change": "Change the time",
        "move_here": "Move my appointment here",
        "moved": "Your appointment has been moved.",
        "cancel": "Cancel the appointment",
        "cancelled": "Your appointment is cancelled.",
        "mine": "My appointments",
    },
}


@pytest.fixture
def sherbrooke_slots(db: Any) -> list[int]:
    clinic = ClinicFactory.create(
        name="Clinique du Lac-des-Nations",
        municipality_geonameid=6146143,
        municipality_name="Sherbrooke",
        address="50 rue King Ouest",
        latitude=45.4042,
        longitude=-71.8929,
    )
    doctor = PractitionerFactory.create(clinic=clinic, first_name="Anne", last_name="Gagnon")
    first = local(2026, 11, 24, 9, 0)
    return [make_slot(doctor, first + timedelta(hours=h)).pk for h in range(3)]


def check(page: Page, name: str) -> None:
    """Audit the page for accessibility and keep a desktop and a phone screenshot."""
    assert_accessible(page)
    screenshot(page, f"{name}-desktop")
    size = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "sideways scrolling"
    screenshot(page, f"{name}-375")
    if size:
        page.set_viewport_size(size)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_new_visitor_books_moves_and_cancels(
    make_page: PageFactory,
    smtp_server: Inbox,
    sherbrooke_slots: list[int],
    language: str,
    tmp_path: Path,
) -> None:
    w = WORDS[language]
    page = make_page(locale=f"{language}-CA")
    email = f"nadia.{language}@example.test"

    page.goto("/")
    check(page, f"{language}-home")
    page.get_by_label(w["place"]).fill("Sherbrooke")
    page.get_by_role("button", name=w["search"]).click()
    expect(page.get_by_text("Clinique du Lac-des-Nations").first).to_be_visible()
    check(page, f"{language}-results")

    page.get_by_role("link", name=re.compile(w["choose"])).first.click()
    check(page, f"{language}-slot-visitor")
    # Held before the visitor has an account; the hold follows them through sign-up.
    page.get_by_role("button", name=w["hold"]).click()
    expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^[45]:\d\d$"))
    check(page, f"{language}-slot-held-visitor")
    page.get_by_role("link", name=w["create"]).last.click()

    page.get_by_label(w["first"]).fill("Nadia")
    page.get_by_label(w["last"]).fill("Tremblay")
    page.get_by_label(w["birth"]).fill("1990-04-12")
    page.get_by_label(w["email"]).fill(email)
    page.get_by_label(w["password"]).fill(PASSWORD)
    page.get_by_label(w["terms"]).check()
    check(page, f"{language}-sign-up")
    page.get_by_role("button", name=w["create_mine"]).click()

    message = smtp_server.wait_for(email)
    code = re.search(r"\b(\d{6})\b", str(message.get_content()))
    assert code is not None
    check(page, f"{language}-verify")
    page.get_by_label(w["code"]).fill(code.group(1))
    page.get_by_role("button", name=w["confirm"]).click()

    countdown = page.locator("[data-countdown]")
    expect(countdown).to_have_text(re.compile(r"^[45]:\d\d$"))
    check(page, f"{language}-slot-held")
    page.get_by_label(w["reason"]).fill("Toux depuis deux semaines")
    page.get_by_role("button", name=w["book"]).click()
    expect(page.get_by_text(w["booked"])).to_be_visible()
    check(page, f"{language}-appointment")

    appointment = Appointment.objects.get(patient__account__email=email)
    assert appointment.slot_id == sherbrooke_slots[0]
    with page.expect_download() as download:
        page.get_by_role("link", name=w["ics"]).click()
    ics = Path(download.value.path()).read_bytes().decode()
    assert ics.startswith("BEGIN:VCALENDAR\r\n")
    assert "DTSTART;TZID=America/Toronto:20261124T090000\r\n" in ics  # Quebec wall clock

    page.get_by_role("link", name=w["change"]).click()
    page.get_by_role("button", name=w["move_here"]).nth(1).click()
    expect(page.get_by_text(w["moved"])).to_be_visible()
    appointment.refresh_from_db()
    assert appointment.slot_id != sherbrooke_slots[0]

    page.get_by_role("link", name=w["cancel"]).click()
    check(page, f"{language}-cancel")
    page.get_by_role("button", name=w["cancel"]).click()
    expect(page.get_by_text(w["cancelled"])).to_be_visible()
    check(page, f"{language}-my-appointments")
    appointment.refresh_from_db()
    assert appointment.status == AppointmentStatus.CANCELLED


def test_two_visitors_race_for_one_slot(
    make_page: PageFactory, sherbrooke_slots: list[int], cast: Any
) -> None:
    """One books; the other is told at once, then books one of the times offered instead."""
    slot_id = sherbrooke_slots[0]
    pages = []
    for email in ("marie@example.test", "paul@example.test"):
        page = make_page(locale="fr-CA")
        page.goto(f"/compte/connexion/?next=/creneaux/{slot_id}/")
        page.get_by_label("Courriel").fill(email)
        page.get_by_label("Mot de passe").fill(PASSWORD)
        page.get_by_role("button", name="Se connecter").last.click()
        expect(page.get_by_role("button", name="Retenir cette heure")).to_be_visible()
        pages.append(page)
    pages[0].get_by_role("button", name="Retenir cette heure").click()
    expect(pages[0].locator("[data-countdown]")).to_be_visible()
    pages[1].get_by_role("button", name="Retenir cette heure").click()
    expect(pages[1].get_by_text("Une autre personne est en train de confirmer")).to_be_visible()
    pages[0].get_by_role("button", name="Réserver ce rendez-vous").click()
    expect(pages[0].get_by_text("Votre rendez-vous est réservé.")).to_be_visible()
    pages[1].get_by_label("Motif de la consultation (facultatif)").fill("Renouvellement")
    pages[1].get_by_role("button", name="Réserver l’heure choisie").click()
    expect(pages[1].get_by_text("Votre rendez-vous est réservé.")).to_be_visible()
    assert Appointment.objects.get(patient__account=cast.paul).reason == "Renouvellement"
