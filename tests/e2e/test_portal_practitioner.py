"""In a real Chromium: a practitioner signs in with both factors and reads their day and
their registered patients; a receptionist registers a patient found by their health card;
the week agenda shows a new booking without a reload. Screenshots in
var/test-artifacts/screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rdv.clinics.models import Membership
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

LIVE_PERIOD_MS = 20_000  # rdv/web/static/web/portal.js


def check(page: Page, name: str) -> None:
    assert_accessible(page)
    screenshot(page, name)


def test_a_practitioner_reads_their_day_and_registered_patients(
    make_page: PageFactory, cast: Cast
) -> None:
    user = UserFactory.create(email="jean.roy@example.test", preferred_language="fr")
    Membership.objects.create(
        user=user, clinic=cast.laval, role="practitioner", practitioner=cast.dr_roy
    )
    marie = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 23, 9, 0)).pk
    )
    services.book_appointment(
        user=cast.paul, slot_id=make_slot(cast.nurse_diane, local(2026, 11, 23, 10, 0)).pk
    )

    page = make_page(locale="fr-CA")
    staff_sign_in(page, user)
    page.goto(f"/clinique/{cast.laval.pk}/ma-journee/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("23")
    expect(page.get_by_role("row", name=re.compile("Marie"))).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Paul"))).to_have_count(0)
    check(page, "portal-my-day-fr")
    page.get_by_role("row", name=re.compile("Marie")).get_by_role(
        "button", name=re.compile("Arrivé")
    ).click()
    expect(page).to_have_url(re.compile(r"/ma-journee/\?date=2026-11-23$"))
    expect(page.get_by_role("status")).to_contain_text("Marie")
    marie.refresh_from_db()
    assert marie.status == "arrived"

    page.goto(f"/clinique/{cast.laval.pk}/mes-patients/")
    table = page.get_by_role("table")
    expect(table.get_by_role("row", name=re.compile("Marie"))).to_be_visible()
    expect(table.get_by_role("row", name=re.compile("Léa"))).to_be_visible()
    check(page, "portal-my-patients-fr")


def test_a_receptionist_registers_a_patient_by_their_card(
    make_page: PageFactory, cast: Cast
) -> None:
    paul = cast.paul_self
    letters = expected_letters(last_name_at_birth=paul.last_name, first_name=paul.first_name)
    number = f"{letters}{paul.date_of_birth:%y%m%d}11"
    set_health_card(patient=paul, ramq_number=number, card_sequence_number="01")
    cast.sophie.preferred_language = "en"
    cast.sophie.save()

    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/patients-inscrits/")
    check(page, "portal-registered-en")
    page.get_by_role("link", name="Dr Jean Roy").click()
    page.get_by_label("Patient's health insurance number").fill("12")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("alert")).to_contain_text("health insurance number")
    check(page, "portal-register-error-en")
    page.get_by_label("Patient's health insurance number").fill(number)
    page.get_by_role("button", name="Find").click()
    check(page, "portal-register-found-en")
    page.get_by_role("button", name=re.compile("Register.*Paul")).click()
    expect(page.get_by_role("status")).to_contain_text("Paul")
    expect(page.get_by_role("table").get_by_role("row", name=re.compile("Paul"))).to_be_visible()
    assert Patient.objects.get(pk=paul.pk).family_doctor_id == cast.dr_roy.pk


def test_the_week_shows_a_new_booking_without_a_reload(make_page: PageFactory, cast: Cast) -> None:
    cast.sophie.preferred_language = "en"
    cast.sophie.save()
    page = make_page(locale="en-CA")
    page.clock.install()  # the page's timers, moved on by the test: no waiting
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/agenda/semaine/")
    wednesday = page.get_by_role("region", name=re.compile("Wednesday 25 November"))
    expect(wednesday).to_contain_text("No appointment this day.")
    check(page, "portal-week-en")
    page.locator("#id_date").fill("2026-12-01")  # typed, not sent: a reload would lose it
    page.evaluate("window.stillTheSamePage = true")

    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 14, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    page.clock.run_for(LIVE_PERIOD_MS + 1_000)

    expect(wednesday).to_contain_text("14:00")
    expect(wednesday.get_by_role("link", name=re.compile("Marie"))).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True
    expect(page.locator("#id_date")).to_have_value("2026-12-01")
    assert Appointment.objects.filter(slot=slot).exists()
