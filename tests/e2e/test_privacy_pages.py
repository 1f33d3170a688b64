"""The privacy pages in a real Chromium: the policy, who viewed my file, my data, the
export and the deletion. Each page is audited for accessibility (axe) and photographed at
desktop and phone widths (var/test-artifacts/screenshots).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import SlotStatus
from tests.conftest import PASSWORD, Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def check(page: Page, name: str) -> None:
    """Audit the page for accessibility and keep a desktop and a phone screenshot."""
    assert_accessible(page)
    screenshot(page, f"{name}-desktop")
    size = page.viewport_size
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375, "sideways scrolling"
    assert_accessible(page)
    screenshot(page, f"{name}-375")
    if size:
        page.set_viewport_size(size)


def sign_in(page: Page, user: User, next_path: str) -> None:
    page.goto(f"/compte/connexion/?next={next_path}")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").last.click()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_privacy_page_names_the_officer(
    make_page: PageFactory, cast: Cast, language: str, settings: Any
) -> None:
    settings.PRIVACY_OFFICER_NAME = "Claire Fortin"
    page = make_page(locale=f"{language}-CA")
    page.goto("/confidentialite/")
    expect(page.get_by_text("Claire Fortin")).to_be_visible()
    expect(page.get_by_role("link", name="privacy@rdvsante.example")).to_be_visible()
    check(page, f"{language}-privacy")


def test_marie_sees_who_viewed_her_file_downloads_her_data_and_deletes_her_account(
    make_page: PageFactory, cast: Cast
) -> None:
    cast.sophie.first_name, cast.sophie.last_name = "Sophie", "Lavoie"
    cast.sophie.save()
    cast.marie.email_verified_at = local(2026, 11, 1, 9, 0)
    # Signing in switches the pages to the account's language.
    cast.marie.preferred_language = "en"
    cast.marie.save()
    audit.record(
        "patient.view",
        actor=cast.sophie,
        role="receptionist",
        subject=audit.Subject(
            object_type="patient",
            object_id=str(cast.lea.pk),
            patient_id=cast.lea.pk,
            clinic_id=cast.laval.pk,
        ),
    )
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    scheduling.book_appointment(user=cast.marie, slot_id=slot.pk, patient_id=cast.lea.pk)

    page = make_page(locale="en-CA")
    sign_in(page, cast.marie, "/compte/acces-a-mon-dossier/")
    expect(page.get_by_role("heading", name="Who viewed my file")).to_be_visible()
    expect(page.get_by_text("Sophie Lavoie")).to_be_visible()
    check(page, "en-access-log")

    page.goto("/compte/mes-donnees/")
    check(page, "en-my-data")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download my data (JSON)").click()
    assert download.value.suggested_filename == "rdv-sante-mes-donnees-2026-11-23.json"
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert {p["first_name"] for p in data["patients"]} == {"Marie", "Léa"}

    page.get_by_label("Your password").fill("not my password")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_text("This is not your password.").first).to_be_visible()
    check(page, "en-delete-refused")

    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    check(page, "en-account-deleted")
    slot.refresh_from_db()
    assert slot.status == SlotStatus.FREE


def test_an_empty_access_log_in_french(make_page: PageFactory, cast: Cast) -> None:
    page = make_page(locale="fr-CA")
    page.goto("/compte/connexion/?next=/compte/acces-a-mon-dossier/")
    page.get_by_label("Courriel").fill(cast.paul.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").last.click()
    expect(page.locator(".empty")).to_be_visible()
    check(page, "fr-access-log-empty")
    page.goto("/compte/mes-donnees/")
    check(page, "fr-my-data")
