"""Setting up an authenticator app, in a real Chromium: Julie, invited to Laval's staff,
signs in with her password only, follows the invitation to the authenticator page, types
the key it shows into "her phone" (the code is computed here from the text on the page, at
the project's frozen time), mistypes once, keeps her recovery codes, comes back to the
invitation, joins and lands on the agenda, all in the same session. Every page is audited
for accessibility and sideways scrolling; screenshots in var/test-artifacts/screenshots.
"""

from __future__ import annotations

import re
from base64 import b32decode

import pytest
from django_otp.oath import hotp
from playwright.sync_api import Page, expect

from rdv.accounts.models import User
from rdv.clinics import staff
from rdv.clinics.models import Membership, StaffInvitation
from rdv.core import clock
from tests.conftest import PASSWORD, Cast, local
from tests.e2e.support import PageFactory, assert_accessible, screenshot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "invitation-secret-for-julie-in-chromium-0123456789"


def check(page: Page, name: str) -> None:
    """Accessible, no sideways scrolling on a phone, and photographed at both widths."""
    assert_accessible(page)
    screenshot(page, name)
    page.set_viewport_size({"width": 375, "height": 812})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{page.url} scrolls sideways at 375 px ({width} px)"
    screenshot(page, f"{name}-375")
    page.set_viewport_size({"width": 1280, "height": 900})


def phone_code(secret_text: str, *, steps: int = 0) -> str:
    """What an authenticator app shows for the key typed from the page."""
    key = b32decode(secret_text.replace(" ", ""))
    step = int(clock.now().timestamp()) // 30 + steps
    return f"{hotp(key, step, digits=6):06d}"


def test_a_new_colleague_sets_up_an_app_and_reaches_the_agenda(
    make_page: PageFactory, cast: Cast
) -> None:
    julie: User = UserFactory.create(
        email="julie@example.test", first_name="Julie", preferred_language="en"
    )
    StaffInvitation.objects.create(
        clinic=cast.laval,
        email=julie.email,
        role="receptionist",
        invited_by=cast.marc,
        token_hash=staff.token_hash(TOKEN),
        created_at=local(2026, 11, 23, 8, 0),
        expires_at=local(2026, 11, 30, 8, 0),
    )
    page = make_page(locale="en-CA")
    page.goto(f"/invitation-equipe/{TOKEN}/")
    page.get_by_role("link", name="Sign in", exact=True).last.click()
    page.locator("#id_email").fill(julie.email)
    page.locator("#id_password").fill(PASSWORD)  # no code: she has no factor yet
    page.locator("main form button[type=submit]").first.click()

    expect(page).to_have_url(re.compile(r"/invitation-equipe/[\w-]+/$"))
    page.get_by_role("link", name="Set up an authenticator app").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Authenticator app")
    expect(page.get_by_text("No authenticator app is set up on your account.")).to_be_visible()
    check(page, "en-authenticator-off")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Set up an authenticator app").click()

    expect(
        page.get_by_role("img", name="QR code to scan with your authenticator app")
    ).to_be_visible()
    secret = page.locator("[data-totp-secret]").inner_text()
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", secret)
    check(page, "en-authenticator-scan")

    right = phone_code(secret)
    page.get_by_label("6-digit code shown by the app").fill(f"{(int(right) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#id_code_error")).to_contain_text("This code does not match.")
    check(page, "en-authenticator-wrong-code")
    assert not Membership.objects.filter(user=julie).exists()

    page.get_by_label("6-digit code shown by the app").fill(right)
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    expect(page.locator("[data-recovery-codes] li")).to_have_count(10)
    check(page, "en-authenticator-recovery-codes")

    page.get_by_role("link", name="I have kept them").click()
    expect(page).to_have_url(re.compile(rf"/invitation-equipe/{TOKEN}/$"))
    page.get_by_role("button", name="Join GMF Laval").click()
    expect(page).to_have_url(re.compile(rf"/clinique/{cast.laval.pk}/agenda/"))
    expect(page.get_by_role("status")).to_contain_text("Welcome to the staff of GMF Laval")
    assert Membership.objects.get(user=julie).clinic == cast.laval

    page.goto("/compte/authentificateur/")
    expect(
        page.get_by_text("On: signing in with your password also asks for a code")
    ).to_be_visible()
    check(page, "en-authenticator-on")
