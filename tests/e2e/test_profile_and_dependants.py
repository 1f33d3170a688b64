"""Marie, signed in, completes her profile and adds her two children, in a real Chromium.

Each page is audited for accessibility and photographed at desktop and phone widths
(var/test-artifacts/screenshots).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from rdv.accounts.models import User
from rdv.patients.models import Patient
from tests.conftest import PASSWORD, Cast, local
from tests.e2e.support import PageFactory, assert_accessible, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


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


def sign_in(page: Page, email: str, language: str) -> None:
    words = {"fr": ("Courriel", "Mot de passe", "Se connecter")}.get(
        language, ("Email", "Password", "Sign in")
    )
    page.goto("/compte/connexion/?next=/compte/profil/")
    page.get_by_label(words[0]).fill(email)
    page.get_by_label(words[1]).fill(PASSWORD)
    page.get_by_role("button", name=words[2]).last.click()
    expect(page).to_have_url(re.compile(r"/compte/profil/$"))


@pytest.fixture
def marie(cast: Cast) -> User:
    cast.marie.email_verified_at = local(2026, 11, 1, 9, 0)
    cast.marie.save(update_fields=["email_verified_at"])
    return cast.marie


def add_child(page: Page, first: str, born: str, ramq: str) -> None:
    page.get_by_role("link", name="Add a family member").click()
    page.get_by_label("Relationship").select_option("child")
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name", exact=True).fill("Patient")
    page.get_by_label("Date of birth").fill(born)
    page.get_by_label("Health insurance number (RAMQ)").fill(ramq)
    page.get_by_label("Card sequence number").fill("01")
    page.get_by_role("button", name="Add this person").click()
    expect(page.get_by_text(f"{first} is added: you can now book for them.")).to_be_visible()


def test_a_parent_completes_the_profile_and_adds_two_children(
    make_page: PageFactory, marie: User, cast: Cast
) -> None:
    # Signing in switches the pages to the account's language.
    User.objects.filter(pk=marie.pk).update(preferred_language="en")
    page = make_page(locale="en-CA")
    sign_in(page, marie.email, "en")
    check(page, "en-profile")

    page.get_by_label("Phone").fill("514 555-0123")
    # Marie Patient, born 1980-01-01 (the story's test data).
    page.get_by_label("Date of birth").fill("1980-01-02")
    page.get_by_label("Health insurance number (RAMQ)").fill("PATM 8001 0212")
    page.get_by_label("Card sequence number").fill("01")
    page.get_by_role("button", name="Save my information").click()
    expect(page.get_by_text("Your information is saved.")).to_be_visible()
    me = Patient.objects.get(pk=cast.marie_self.pk)
    assert (me.phone, me.ramq_number) == ("+15145550123", "PATM80010212")

    # A number that does not fit: explained on its field, focusable from the summary.
    page.get_by_label("Date of birth").fill("1980-01-03")
    page.get_by_role("button", name="Save my information").click()
    expect(page.locator("#id_ramq_number_error")).to_have_text(
        "The health insurance number does not match the day of birth."
    )
    check(page, "en-profile-error")

    page.get_by_label("By text message").check()
    page.get_by_label("Send me reminders before my appointments").uncheck()
    page.get_by_role("button", name="Save my preferences").click()
    expect(page.get_by_text("Your preferences are saved.")).to_be_visible()
    marie.refresh_from_db()
    assert (marie.notify_by_sms, marie.reminders) == (True, False)

    page.get_by_role("link", name="The family members I book for").click()
    check(page, "en-dependants")
    page.get_by_role("link", name="Add a family member").click()
    check(page, "en-dependant-add")
    # A parent cannot name a family doctor (the doctor's clinic registers patients): the
    # only choice for a new person is "none".
    expect(page.get_by_label("Family doctor").locator("option")).to_have_count(1)
    page.get_by_role("link", name="Back to family members").click()
    add_child(page, "Noé", "2021-03-09", "PATN 2103 0912")
    add_child(page, "Zoé", "2019-07-30", "PATZ 1957 3001")
    expect(page.get_by_text("Noé Patient")).to_be_visible()
    expect(page.get_by_text("Zoé Patient")).to_be_visible()
    check(page, "en-dependants-three")

    page.get_by_role("link", name="Edit Noé").click()
    check(page, "en-dependant-edit")
    page.get_by_role("link", name="Back to family members").click()
    page.get_by_role("link", name="Remove Zoé").click()
    check(page, "en-dependant-remove")
    page.get_by_role("link", name="Keep them").click()

    page.goto("/")
    expect(page.locator("select[name=patient_id] option")).to_have_text(
        ["Marie Patient", "Léa Patient", "Noé Patient", "Zoé Patient"]
    )
    noe = Patient.objects.get(account=marie, first_name="Noé")
    assert (noe.relationship, noe.ramq_number, noe.family_doctor_id) == (
        "child",
        "PATN21030912",
        None,
    )


def test_the_pages_in_french_are_accessible(
    make_page: PageFactory, marie: User, cast: Cast
) -> None:
    page = make_page(locale="fr-CA")
    sign_in(page, marie.email, "fr")
    check(page, "fr-profile")
    page.goto("/compte/proches/")
    check(page, "fr-dependants")
    page.goto("/compte/proches/ajouter/")
    page.locator("button[type=submit].primary").click()  # nothing filled in: every error
    expect(page.locator("#error-summary")).to_be_visible()
    check(page, "fr-dependant-add-errors")
    page.goto(f"/compte/proches/{cast.lea.pk}/retirer/")
    check(page, "fr-dependant-remove")
