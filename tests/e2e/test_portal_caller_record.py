"""In a real Chromium: an elderly caller has no RDV Santé account. The receptionist searches
their number, finds nobody, creates their file from the same page (the number already
filled in), books them a time, and sees them in the day's agenda. Screenshots in
var/test-artifacts/screenshots."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rdv.notifications.models import Channel, Kind, Message
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def check(page: Page, name: str) -> None:
    assert_accessible(page)
    screenshot(page, name)


def test_a_caller_without_an_account_gets_a_file_and_a_time(
    make_page: PageFactory, cast: Cast
) -> None:
    number = expected_letters(last_name_at_birth="Tremblay", first_name="Gisèle") + "41030911"
    slot = make_slot(cast.dr_roy, local(2026, 11, 23, 14, 0))
    cast.sophie.preferred_language = "en"  # signing in switches to the account's language
    cast.sophie.save()

    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/telephone/")
    page.get_by_label("Caller's health insurance number").fill(number)
    page.get_by_role("button", name="Find", exact=True).click()
    expect(page.get_by_role("heading", name="Create the caller's file")).to_be_visible()
    expect(page.get_by_label("Health insurance number (RAMQ)")).to_have_value(number)
    check(page, "portal-phone-nobody-en")

    new_file = page.locator("form[action$='/telephone/nouveau/']")
    new_file.get_by_label("First name").fill("Gisèle")
    new_file.get_by_label("Last name", exact=True).fill("Tremblay")
    new_file.get_by_label("Date of birth").fill("1941-03-09")
    new_file.get_by_label("Phone").fill("450 555-0177")
    new_file.get_by_role("button", name="Create the file and choose a time").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("A time for Gisèle Tremblay")
    check(page, "portal-phone-new-file-slots-en")

    page.get_by_role("button", name=re.compile("Book.*14:00")).click()
    expect(page.get_by_role("status")).to_contain_text("Booked for Gisèle")
    expect(page.get_by_role("row", name=re.compile("Tremblay"))).to_be_visible()
    check(page, "portal-agenda-with-new-file-en")

    gisele = Patient.objects.get(record_clinic=cast.laval)
    assert gisele.account_id is None
    appointment = Appointment.objects.get(slot=slot)
    assert (appointment.patient_id, appointment.booked_by_id) == (gisele.pk, cast.sophie.pk)
    assert Message.objects.filter(
        appointment=appointment, kind=Kind.BOOKED, channel=Channel.SMS
    ).exists()
