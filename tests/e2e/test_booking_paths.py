"""Booking with the keyboard alone, and a parent booking two children in one visit."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from rdv.patients.models import Patient
from rdv.scheduling.models import Appointment
from tests.conftest import PASSWORD, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot
from tests.factories import ClinicFactory, PatientFactory, PractitionerFactory

pytestmark = pytest.mark.django_db(transaction=True)

MAX_TABS = 60


@pytest.fixture
def sherbrooke_slots(db: Any) -> list[int]:
    clinic = ClinicFactory.create(
        name="Clinique du Lac-des-Nations",
        municipality_geonameid=6146143,
        municipality_name="Sherbrooke",
        latitude=45.4042,
        longitude=-71.8929,
    )
    doctor = PractitionerFactory.create(clinic=clinic, first_name="Anne", last_name="Gagnon")
    nurse = PractitionerFactory.create(clinic=clinic, first_name="Luc", last_name="Paquette")
    first = local(2026, 11, 24, 9, 0)
    return [
        make_slot(doctor, first).pk,
        make_slot(nurse, first + timedelta(minutes=30)).pk,
        make_slot(doctor, first + timedelta(hours=3)).pk,
    ]


def focused(page: Page) -> dict[str, str]:
    """What has the keyboard focus: its tag, accessible text and focus outline."""
    result: dict[str, str] = page.evaluate(
        """() => {
            const el = document.activeElement;
            const label = el.labels && el.labels[0] ? el.labels[0].innerText : "";
            const style = getComputedStyle(el);
            return {
                tag: el.tagName.toLowerCase(),
                text: (el.innerText || el.value || "") + " " + label,
                outline: style.outlineStyle + " " + style.outlineWidth,
            };
        }"""
    )
    return result


def tab_to(page: Page, text: str) -> None:
    """Press Tab until the focused element shows `text`; it must show a visible outline."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        now = focused(page)
        if text in now["text"]:
            assert not now["outline"].startswith("none"), f"no visible focus on {text!r}"
            return
    pytest.fail(f"{text!r} cannot be reached with the Tab key")


def follow(page: Page) -> None:
    """Press Enter on a link or submit button and wait for the next page."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_booking_with_the_keyboard_alone(
    make_page: PageFactory, sherbrooke_slots: list[int], cast: Any
) -> None:
    page = make_page(locale="fr-CA")
    page.goto("/compte/connexion/")
    tab_to(page, "Courriel")
    page.keyboard.type("paul@example.test")
    tab_to(page, "Mot de passe")
    page.keyboard.type(PASSWORD)
    follow(page)
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    page.goto("/")
    tab_to(page, "Municipalité ou code postal")
    page.keyboard.type("Sherbrooke")
    follow(page)
    expect(page.get_by_text("Clinique du Lac-des-Nations").first).to_be_visible()
    tab_to(page, "Choisir cette heure")
    follow(page)
    tab_to(page, "Retenir cette heure")
    follow(page)
    expect(page.locator("[data-countdown]")).to_be_visible()
    tab_to(page, "Motif de la consultation")
    page.keyboard.type("Mal de gorge")
    tab_to(page, "Réserver ce rendez-vous")
    follow(page)
    expect(page.get_by_text("Votre rendez-vous est réservé.")).to_be_visible()
    appointment = Appointment.objects.get(patient__account=cast.paul)
    assert (appointment.slot_id, appointment.reason) == (sherbrooke_slots[0], "Mal de gorge")


def test_the_skip_link_is_the_first_stop_and_moves_focus_to_the_content(
    make_page: PageFactory, cast: Any
) -> None:
    page = make_page(locale="en-CA")
    page.goto("/")
    page.keyboard.press("Tab")
    assert focused(page)["text"].strip() == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def test_a_parent_books_two_children_in_one_visit(
    make_page: PageFactory, sherbrooke_slots: list[int], cast: Any
) -> None:
    noah = PatientFactory.create(
        account=cast.marie,
        relationship=Patient.Relationship.CHILD,
        first_name="Noah",
        date_of_birth=date(2018, 3, 4),
    )
    page = make_page(locale="fr-CA")
    page.goto("/compte/connexion/")
    page.get_by_label("Courriel").fill("marie@example.test")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()

    page.goto("/")
    page.get_by_role("link", name="Réserver pour plusieurs membres de la famille").click()
    page.get_by_label("Léa").check()
    page.get_by_label("Noah").check()
    page.get_by_label("Municipalité ou code postal").fill("Sherbrooke")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_text("Clinique du Lac-des-Nations").first).to_be_visible()
    assert_accessible(page)
    screenshot(page, "fr-family-search")
    page.get_by_role("link", name=re.compile("Choisir ces heures")).first.click()
    page.locator("textarea").nth(1).fill("Vaccin")
    assert_accessible(page)
    screenshot(page, "fr-family-confirm")
    page.get_by_role("button", name="Réserver ces 2 rendez-vous").click()
    expect(page.get_by_text("Vos rendez-vous sont réservés.")).to_be_visible()

    booked = {a.patient_id: a for a in Appointment.objects.filter(patient__account=cast.marie)}
    assert set(booked) == {cast.lea.pk, noah.pk}
    assert {a.slot_id for a in booked.values()} == set(sherbrooke_slots[:2])
    assert booked[noah.pk].reason == "Vaccin"
    expect(page.get_by_text("Léa").first).to_be_visible()
    expect(page.get_by_text("Noah").first).to_be_visible()
