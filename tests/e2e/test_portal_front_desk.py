"""A receptionist's morning in a real Chromium: she signs in with both factors, opens the
day's agenda, checks one patient in, marks another absent, and cancels a third for the
clinic with a reason. Screenshots in var/test-artifacts/screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rdv.core import clock
from rdv.notifications.models import Kind, Message
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def check(page: Page, name: str) -> None:
    assert_accessible(page)
    screenshot(page, name)


def test_the_front_desk_records_the_morning(make_page: PageFactory, cast: Cast) -> None:
    # Paul's visit was at 07:30 (booked the day before); Marie's is at 09:00, Léa's at 10:00.
    early = make_slot(cast.dr_roy, local(2026, 11, 23, 7, 30))
    with clock.frozen_now(local(2026, 11, 22, 12, 0)):
        paul = services.book_appointment(user=cast.paul, slot_id=early.pk)
    marie = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 23, 9, 0)).pk
    )
    lea = services.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.nurse_diane, local(2026, 11, 23, 10, 0)).pk,
        patient_id=cast.lea.pk,
    )

    page = make_page(locale="fr-CA")
    staff_sign_in(page, cast.sophie)
    page.goto("/clinique/")
    expect(page).to_have_url(re.compile(rf"/clinique/{cast.laval.pk}/agenda/$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Agenda")
    check(page, "portal-agenda-fr")

    row = page.get_by_role("row", name=re.compile("Marie"))
    row.get_by_role("button", name=re.compile("Arrivé")).click()
    expect(page.get_by_role("status")).to_contain_text("Marie")
    row = page.get_by_role("row", name=re.compile("Paul"))
    row.get_by_role("button", name=re.compile("Absence")).click()
    expect(page.get_by_role("status")).to_contain_text("Paul")
    check(page, "portal-agenda-after-check-in-fr")

    page.get_by_role("link", name=re.compile("Léa")).click()
    page.get_by_label(re.compile("Raison")).fill("La clinique ferme à midi")
    page.get_by_role("button", name="Annuler le rendez-vous").click()
    expect(page.get_by_role("status")).to_contain_text("annulé")

    statuses = dict(
        Appointment.objects.filter(pk__in=[paul.pk, marie.pk, lea.pk]).values_list("pk", "status")
    )
    assert statuses == {paul.pk: "noshow", marie.pk: "arrived", lea.pk: "cancelled"}
    assert Message.objects.filter(appointment=paul, kind=Kind.MISSED).exists()
    assert Message.objects.filter(appointment=lea, kind=Kind.CANCELLED).exists()


def test_a_phone_caller_found_by_their_card_is_booked_then_checked_in(
    make_page: PageFactory, cast: Cast
) -> None:
    paul = cast.paul_self
    letters = expected_letters(last_name_at_birth=paul.last_name, first_name=paul.first_name)
    number = f"{letters}{paul.date_of_birth:%y%m%d}11"
    set_health_card(patient=paul, ramq_number=number, card_sequence_number="01")
    slot = make_slot(cast.dr_roy, local(2026, 11, 23, 11, 0))
    cast.sophie.preferred_language = "en"  # signing in switches to the account's language
    cast.sophie.save()

    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/agenda/")
    page.get_by_role("link", name="Book for a caller").click()
    page.get_by_label("Caller's health insurance number").fill(
        " ".join([number[:4], number[4:8], number[8:]])
    )
    page.get_by_role("button", name="Find").click()
    check(page, "portal-phone-found-en")
    page.get_by_role("button", name=re.compile("Choose a time")).click()
    check(page, "portal-phone-slots-en")
    page.get_by_role("button", name=re.compile("Book.*11:00")).click()
    expect(page.get_by_role("status")).to_contain_text("Booked for Paul")
    page.get_by_role("row", name=re.compile("Paul")).get_by_role(
        "button", name=re.compile("Arrived")
    ).click()
    # Wait for the page after the check-in: Paul's row now offers "Seen".
    expect(
        page.get_by_role("row", name=re.compile("Paul")).get_by_role(
            "button", name=re.compile("Seen")
        )
    ).to_be_visible()
    appointment = Appointment.objects.get(slot=slot)
    assert (appointment.status, appointment.booked_by_id) == ("arrived", cast.sophie.pk)
