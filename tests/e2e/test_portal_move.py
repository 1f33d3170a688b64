"""In a real Chromium: Dr Roy will be away, so Sophie (receptionist) moves Marie's
appointment to the nurse's afternoon; Marie gets the email on the real SMTP server. And
Marc (administrator) opens a reserved weekly time to the public the day before.
Screenshots in var/test-artifacts/screenshots."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import Page, expect

from rdv.scheduling import services
from rdv.scheduling.models import AvailabilityRule, Slot
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import (
    Inbox,
    PageFactory,
    assert_accessible,
    screenshot,
    staff_sign_in,
)

pytestmark = pytest.mark.django_db(transaction=True)


def check(page: Page, name: str) -> None:
    assert_accessible(page)
    screenshot(page, name)


def mail_saying(inbox: Inbox, to: str, text: str) -> str:
    """The body of the first message to `to` that contains `text` (waiting for the worker;
    the booking's own confirmation comes first)."""
    arrived = threading.Event()
    for _ in range(50):
        for message in inbox.messages:
            body = message.get_body(preferencelist=("plain",))
            content = body.get_content() if body is not None else ""
            if to in str(message["To"]) and text in content:
                return str(content)
        arrived.wait(0.2)
    pytest.fail(f"no message to {to} saying {text!r}: {[m['Subject'] for m in inbox.messages]}")


def test_the_receptionist_moves_an_appointment_and_the_patient_is_emailed(
    make_page: PageFactory, cast: Cast, smtp_server: Inbox
) -> None:
    maries = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0)).pk
    )
    nurse = make_slot(cast.nurse_diane, local(2026, 11, 25, 14, 0))
    cast.sophie.preferred_language = "en"  # signing in switches to the account's language
    cast.sophie.save()

    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/rendez-vous/{maries.pk}/")
    page.get_by_role("link", name="Move the appointment").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Move the appointment of Marie")
    check(page, "portal-move-en")
    page.get_by_role("button", name=re.compile("Move here.*14:00")).click()
    expect(page.get_by_role("status")).to_contain_text("moved")
    expect(page).to_have_url(re.compile(r"/agenda/\?date=2026-11-25$"))
    check(page, "portal-move-done-en")

    maries.refresh_from_db()
    assert maries.slot_id == nurse.pk
    assert Slot.objects.get(pk=nurse.pk).status == "booked"
    body = mail_saying(smtp_server, cast.marie.email, "14:00")
    assert "Marie" in body


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_administrator_opens_reserved_times_to_the_public(
    make_page: PageFactory, cast: Cast, language: str
) -> None:
    cast.marc.preferred_language = language
    cast.marc.save()
    page = make_page(locale=f"{language}-CA")
    staff_sign_in(page, cast.marc)
    page.goto(f"/clinique/{cast.laval.pk}/praticiens/{cast.dr_roy.pk}/")
    form = page.locator("form[action$='/horaires/ajouter/']")
    form.locator("#id_weekday").select_option("2")
    form.locator("#id_start_time").fill("09:00")
    form.locator("#id_end_time").fill("10:00")
    form.locator("#id_slot_minutes").fill("30")
    form.locator("#id_appointment_type").select_option("periodic")
    form.locator("#id_visibility").select_option("registered")
    form.locator("#id_release_hours").fill("24")
    form.locator("button[type=submit]").click()
    expect(page.get_by_role("status")).to_be_visible()
    rule = AvailabilityRule.objects.get()
    assert rule.release_hours == 24
    check(page, f"portal-release-{language}")

    row_form = page.locator(f"form[action$='/horaires/{rule.pk}/ouverture/']")
    row_form.locator("input[name=release_hours]").fill("400")
    row_form.locator("button[type=submit]").click()
    expect(page.locator(".field-error")).to_be_visible()
    check(page, f"portal-release-refused-{language}")
    rule.refresh_from_db()
    assert rule.release_hours == 24
