"""Read-only mode in a real Chromium: Marie sees the banner in French and English whatever
her language, and her booking is refused with a page that says why in both."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from rdv.continuity import readonly
from rdv.continuity.services import set_read_only
from rdv.scheduling.models import Appointment, Slot
from tests.conftest import PASSWORD, Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def mode_lifted_after(transactional_db: Any) -> Iterator[None]:
    yield
    readonly.set_session_read_only(False)
    set_read_only(False, reason="", actor=None, role="operator")


def test_the_banner_speaks_both_languages_and_a_booking_is_refused(
    make_page: PageFactory, cast: Cast
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    page = make_page(locale="fr-CA")
    page.goto("/compte/connexion/")
    page.locator("#id_email").fill(cast.marie.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/connexion/" not in url)
    page.goto(f"/creneaux/{slot.pk}/")
    page.get_by_role("button", name="Retenir cette heure").click()
    expect(page.get_by_role("button", name="Réserver ce rendez-vous")).to_be_visible()

    set_read_only(True, reason="Incident drill", actor=None, role="operator")
    page.reload()
    banner = page.locator(".read-only-banner")
    expect(banner.locator("[lang=fr]")).to_contain_text("Lecture seule")
    expect(banner.locator("[lang=en]")).to_contain_text("Read-only")
    assert_accessible(page)
    screenshot(page, "read-only-slot-fr")

    # The language switch still works, and the banner keeps both languages.
    page.get_by_role("button", name="English").click()
    expect(page.get_by_role("button", name="Book this appointment")).to_be_visible()
    expect(banner.locator("[lang=fr]")).to_contain_text("Lecture seule")
    expect(banner.locator("[lang=en]")).to_contain_text("Read-only")

    with page.expect_console_message(lambda message: "503" in message.text):
        page.get_by_role("button", name="Book this appointment").click()
    # That 503 is the point of the test, not a problem of the page.
    make_page.problems(page).clear()
    expect(page.get_by_role("heading", level=1)).to_have_text("Lecture seule / Read-only")
    expect(page.get_by_role("alert")).to_contain_text("n’accepte aucune modification")
    expect(page.get_by_role("alert")).to_contain_text("accepts no changes right now")
    assert_accessible(page)
    screenshot(page, "read-only-refused")
    assert not Appointment.objects.exists()
    assert Slot.objects.get(pk=slot.pk).status != "booked"
