"""A clinic administrator closes a day for one practitioner, in a real Chromium: Marc
(English) signs in with both factors, closes Dr Roy on Wednesday 25 November, sees the
closure listed, and a visitor searching Laval that day then finds Diane Morin's times and
none of Dr Roy's. Screenshots in var/test-artifacts/screenshots.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from rdv.clinics.queries import staff_context
from rdv.scheduling import services
from rdv.scheduling.models import Closure
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


def wednesday_afternoons(cast: Cast) -> None:
    """Dr Roy and Diane Morin: Wednesdays 13:00–15:00 in 30-minute appointments."""
    ctx = staff_context(cast.marc, cast.laval.pk)
    for practitioner in (cast.dr_roy, cast.nurse_diane):
        services.add_weekly_rule(
            ctx,
            practitioner.pk,
            weekday=2,
            start_time=time(13),
            end_time=time(15),
            slot_minutes=30,
            appointment_type="periodic",
            visibility="public",
            valid_from=date(2026, 11, 23),
            valid_until=None,
        )


def test_an_admin_closes_a_practitioner_for_a_day_and_visitors_no_longer_see_his_times(
    make_page: PageFactory, cast: Cast, settings: Any
) -> None:
    settings.SLOT_HORIZON_DAYS = 14  # Monday 23 November to Sunday 6 December 2026
    wednesday_afternoons(cast)
    cast.marc.preferred_language = "en"
    cast.marc.save()
    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.marc)
    page.goto(f"/clinique/{cast.laval.pk}/agenda/")
    page.locator(f"nav.portal a[href='/clinique/{cast.laval.pk}/fermetures/']").click()
    expect(page).to_have_url(re.compile(rf"/clinique/{cast.laval.pk}/fermetures/$"))
    expect(page.locator("nav.portal [aria-current=page]")).to_have_text("Closures")
    expect(page.get_by_text("No upcoming closure.")).to_be_visible()

    page.locator("#id_practitioner").select_option(str(cast.dr_roy.pk))
    page.locator("#id_first_day").fill("2026-11-25")
    page.locator("#id_last_day").fill("2026-11-25")
    page.locator("#id_reason").fill("Training")
    page.locator("form[aria-labelledby=add-closure] button[type=submit]").click()
    expect(page.get_by_role("status")).to_contain_text("The closure is added")
    row = page.get_by_role("row", name=re.compile("Training"))
    expect(row).to_contain_text("Dr Jean Roy")
    expect(row).to_contain_text("25 November 2026")
    assert Closure.objects.filter(practitioner=cast.dr_roy).count() == 1

    # Quebec's statutory holidays still ahead this year: Christmas.
    page.get_by_role("button", name="Close on Quebec's statutory holidays of 2026").click()
    expect(page.get_by_role("status")).to_contain_text("1 statutory holiday of 2026")
    expect(page.get_by_role("row", name=re.compile("Christmas Day"))).to_contain_text(
        "The whole clinic"
    )
    check(page, "portal-closures-en")

    # A refused closure says why, on the field, and keeps what was typed.
    page.locator("#id_first_day").fill("2026-11-27")
    page.locator("#id_last_day").fill("2026-11-26")
    page.locator("form[aria-labelledby=add-closure] button[type=submit]").click()
    expect(page.locator("#error-summary")).to_contain_text("cannot be before the first day")
    expect(page.locator("#id_first_day")).to_have_value("2026-11-27")
    check(page, "portal-closures-refused-en")

    visitor = make_page(locale="fr-CA")
    visitor.goto("/?near=Laval&radius_km=25&date_from=2026-11-25&date_to=2026-11-25")
    results = visitor.locator("ol.slots li.slot")
    expect(results).to_have_count(4)
    expect(results.filter(has_text="Diane Morin")).to_have_count(4)
    expect(results.filter(has_text="Roy")).to_have_count(0)
    expect(results.first.locator("time")).to_contain_text("13:00")
    assert_accessible(visitor)
    screenshot(visitor, "search-without-closed-practitioner-fr")

    page.goto(f"/clinique/{cast.laval.pk}/parametres/")
    expect(page.locator("nav.portal [aria-current=page]")).to_have_text("Settings")
    page.locator("#id_first_reminder_days").fill("2")
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("status")).to_contain_text("The settings are saved")
    expect(page.locator("#id_first_reminder_days")).to_have_value("2")
    check(page, "portal-settings-en")
