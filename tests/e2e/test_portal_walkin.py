"""A walk-in morning in a real Chromium: Sophie, Laval's receptionist, opens today's waves,
gives the 08:00 wave's two places, sees both people in the queue with their places and
estimated times, and the wave refuses a third person with a clear message. Screenshots in
var/test-artifacts/screenshots."""

from __future__ import annotations

import re
from datetime import date, time

import pytest
from playwright.sync_api import Page, expect

from rdv.accounts.models import User
from rdv.clinics.queries import staff_context
from rdv.walkin import services
from rdv.walkin.models import WalkIn, Wave
from tests.conftest import Cast, local
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def check(page: Page, name: str) -> None:
    assert_accessible(page)
    screenshot(page, name)


def add_walk_in(page: Page, first_name: str, last_name: str) -> None:
    page.get_by_label("First name").fill(first_name)
    page.get_by_label("Last name").fill(last_name)
    page.get_by_role("button", name="Give the next place").click()


def test_a_walk_in_wave_fills_to_capacity_and_refuses_the_next(
    make_page: PageFactory, cast: Cast
) -> None:
    # Sophie reads the portal in English (signing in switches to her language).
    User.objects.filter(pk=cast.sophie.pk).update(preferred_language="en")
    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/agenda/")
    page.get_by_role("link", name="Walk-ins").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Walk-ins")
    expect(page.get_by_text("No wave this day.")).to_be_visible()

    # It is Monday 2026-11-23, 08:00: three waves, 08:00, 08:30 and 09:00, of 2 people.
    page.get_by_label("First wave at").fill("08:00")
    page.get_by_label("Last wave at").fill("09:00")
    page.get_by_label("Length of each wave").select_option("30")
    page.get_by_label("Patients per wave").fill("2")
    page.get_by_role("button", name="Open the waves").click()
    expect(page.get_by_role("status")).to_contain_text("3 waves opened.")
    waves = page.get_by_role("table", name="Waves of the day")
    expect(waves.get_by_role("row")).to_have_count(4)  # a header and three waves
    expect(waves.get_by_role("row").nth(1)).to_contain_text("0 of 2")
    check(page, "portal-walkins-opened-en")

    waves.get_by_role("link", name=re.compile("08:00")).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Wave 08:00–08:30")
    add_walk_in(page, "Ana", "Tremblay")
    expect(page.get_by_role("status")).to_contain_text("Ana Tremblay has place 1.")
    add_walk_in(page, "Bruno", "Gagnon")
    expect(page.get_by_role("status")).to_contain_text("Bruno Gagnon has place 2.")
    expect(page.get_by_text("Places taken: 2 of 2")).to_be_visible()

    page.get_by_role("link", name="Back to the day's waves").click()
    queue = page.get_by_role("table", name="People waiting, in the order they will be called")
    rows = queue.get_by_role("row")
    expect(rows).to_have_count(3)
    # Position, name, wave, place, estimated time: 30 minutes shared by two places.
    expect(rows.nth(1)).to_contain_text(re.compile(r"1\s*Tremblay, Ana\s*08:00\s*1\s*08:00"))
    expect(rows.nth(2)).to_contain_text(re.compile(r"2\s*Gagnon, Bruno\s*08:00\s*2\s*08:15"))
    expect(waves.get_by_role("row").nth(1)).to_contain_text("Full")
    check(page, "portal-walkins-queue-en")

    waves.get_by_role("link", name=re.compile("08:00")).click()
    add_walk_in(page, "Chloé", "Roy")
    summary = page.locator("#error-summary")
    expect(summary).to_contain_text(
        "This wave is full (2 patients). Offer the next wave or an appointment."
    )
    expect(summary).to_be_focused()  # site.js: the error summary is read first
    expect(page.get_by_role("link", name="08:30")).to_be_visible()  # the next wave with room
    people = page.get_by_role("table", name="People of this wave, by place")
    expect(people.get_by_role("row")).to_have_count(3)  # a header and two people
    expect(page.get_by_label("First name")).to_have_value("Chloé")
    check(page, "portal-wave-full-en")

    wave = Wave.objects.get(clinic=cast.laval, start=local(2026, 11, 23, 8, 0))
    assert wave.taken == 2
    assert list(WalkIn.objects.order_by("place").values_list("first_name", "place")) == [
        ("Ana", 1),
        ("Bruno", 2),
    ]


def test_the_queue_refreshes_itself_without_a_reload(make_page: PageFactory, cast: Cast) -> None:
    """Another desk adds someone: within 20 s the queue shows them, and what Sophie was
    typing outside the live region stays as it was (no reload)."""
    User.objects.filter(pk=cast.sophie.pk).update(preferred_language="en")
    ctx = staff_context(cast.sophie, cast.laval.pk)
    (wave,) = services.open_waves(
        ctx, day=date(2026, 11, 23), first_start=time(9), last_start=time(9), capacity=4
    )
    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.sophie)
    page.clock.install()  # the page's timers run when the test says so
    page.goto(f"/clinique/{cast.laval.pk}/sans-rendez-vous/")
    expect(page.get_by_text("Nobody is waiting.")).to_be_visible()
    page.get_by_label("Patients per wave").fill("5")

    services.add_walk_in(ctx, wave.pk, first_name="Dina", last_name="Lavoie")
    page.clock.run_for(21_000)
    queue = page.get_by_role("table", name="People waiting, in the order they will be called")
    expect(queue).to_contain_text("Lavoie, Dina")
    expect(page.get_by_label("Patients per wave")).to_have_value("5")
