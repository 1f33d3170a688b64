"""A clinic administrator publishes a new practitioner's schedule, in a real Chromium: Marc
signs in with both factors, adds Dre Alice Gagnon and her Wednesday afternoons, and a
visitor searching Laval then finds her times. Screenshots in var/test-artifacts/screenshots.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from rdv.clinics.models import Practitioner
from rdv.scheduling.models import Slot
from tests.conftest import Cast
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def check(page: Page, name: str) -> None:
    """Accessible, no sideways scrolling on a phone, and photographed at both widths."""
    assert_accessible(page)
    screenshot(page, name)
    page.set_viewport_size({"width": 375, "height": 812})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px ({width} px)"
    screenshot(page, f"{name}-375")
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_admin_publishes_a_new_practitioner_and_visitors_find_her_times(
    make_page: PageFactory, cast: Cast, settings: Any
) -> None:
    settings.SLOT_HORIZON_DAYS = 14  # Monday 23 November to Sunday 6 December 2026
    page = make_page(locale="fr-CA")
    staff_sign_in(page, cast.marc)
    page.goto(f"/clinique/{cast.laval.pk}/agenda/")
    page.locator(f"nav.portal a[href='/clinique/{cast.laval.pk}/praticiens/']").click()
    expect(page).to_have_url(re.compile(rf"/clinique/{cast.laval.pk}/praticiens/$"))
    expect(page.locator("nav.portal [aria-current=page]")).to_have_count(1)
    check(page, "portal-practitioners-fr")

    page.locator("#id_first_name").fill("Alice")
    page.locator("#id_last_name").fill("Gagnon")
    page.locator("#id_profession").select_option("family_doctor")
    page.locator("input[name=languages][value=fr]").check()
    page.locator("input[name=languages][value=en]").check()
    page.locator("#id_accepting_new_patients").check()
    page.locator("form[aria-labelledby=add-practitioner] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/praticiens/\d+/$"))  # the POST is done
    gagnon = Practitioner.objects.get(clinic=cast.laval, last_name="Gagnon")
    expect(page).to_have_url(re.compile(rf"/praticiens/{gagnon.pk}/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Dr Alice Gagnon")
    expect(page.get_by_role("status")).to_contain_text("Alice Gagnon")

    page.locator("#id_weekday").select_option("2")  # Wednesday
    page.locator("#id_start_time").fill("13:00")
    page.locator("#id_end_time").fill("15:00")
    page.locator("#id_slot_minutes").fill("30")
    page.locator("#id_appointment_type").select_option("periodic")
    page.locator("#id_visibility").select_option("public")
    page.locator("#id_valid_from").fill("2026-11-23")
    page.locator("form[aria-labelledby=add-weekly-time] button[type=submit]").click()
    expect(page.get_by_role("row", name=re.compile("13:00–15:00"))).to_have_count(1)
    expect(page.get_by_role("status")).to_be_visible()
    assert Slot.objects.filter(practitioner=gagnon, status="free").count() == 8
    check(page, "portal-practitioner-fr")

    # A refused weekly time keeps what was typed and says why, on the field.
    page.locator("#id_weekday").select_option("2")
    page.locator("#id_start_time").fill("14:00")
    page.locator("#id_end_time").fill("16:00")
    page.locator("#id_slot_minutes").fill("30")
    expect(page.locator("#id_valid_from")).to_have_value("2026-11-23")  # today, by default
    page.locator("form[aria-labelledby=add-weekly-time] button[type=submit]").click()
    expect(page.locator("#error-summary")).to_contain_text("13:00–15:00")
    expect(page.locator("#id_start_time")).to_have_value("14:00")
    check(page, "portal-practitioner-refused-fr")

    visitor = make_page(locale="fr-CA")
    visitor.goto("/")
    visitor.locator("#id_near").fill("Laval")
    visitor.locator("#id_radius_km").select_option("25")
    visitor.locator("#id_appointment_type").select_option("periodic")
    visitor.locator("#id_date_from").fill("2026-11-25")
    visitor.locator("#id_date_to").fill("2026-11-25")
    visitor.locator("form.search button[type=submit]").click()
    results = visitor.locator("ol.slots li.slot")
    expect(results).to_have_count(4)
    expect(results.first).to_contain_text("Alice Gagnon")
    expect(results.first.locator("time")).to_contain_text("13:00")
    expect(results.last.locator("time")).to_contain_text("14:30")
    assert_accessible(visitor)
    screenshot(visitor, "search-finds-new-practitioner-fr")
