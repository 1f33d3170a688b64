"""A forgotten password reset by email, and a passkey added, used and removed, in Chromium.

The reset mail comes through the real local SMTP server. The passkey lives in Chromium's
virtual authenticator (DevTools protocol, WebAuthn domain), so the whole ceremony runs:
the browser's WebAuthn API, our script, py_webauthn's checks. Each page is audited for
accessibility and photographed at desktop and phone widths.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import authenticate
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from rdv.accounts.models import Passkey, User
from tests.conftest import PASSWORD, Cast
from tests.e2e.support import Inbox, PageFactory, assert_accessible, first_link, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

NEW_PASSWORD = "a quiet lake at dawn"


@pytest.fixture
def marie(cast: Cast) -> User:
    """Marie, who reads RDV Santé in English (signing in switches to her language)."""
    User.objects.filter(pk=cast.marie.pk).update(preferred_language="en")
    cast.marie.refresh_from_db()
    return cast.marie


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


def sign_in_with_password(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_a_forgotten_password_is_reset_by_email(
    make_page: PageFactory, smtp_server: Inbox, live_server: LiveServer, settings: Any, marie: User
) -> None:
    settings.SITE_URL = live_server.url
    page = make_page(locale="en-CA")
    page.goto("/compte/connexion/")
    check(page, "en-sign-in-with-reset-and-passkey")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page.get_by_role("heading", name="Forgot your password?")).to_be_visible()
    page.get_by_label("Email").fill(marie.email)
    check(page, "en-password-reset-request")
    page.get_by_role("button", name="Send me a link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check(page, "en-password-reset-sent")

    link = first_link(smtp_server.wait_for(marie.email))
    assert link.startswith(f"{live_server.url}/compte/mot-de-passe/nouveau/")
    page.goto(link)
    # The token is swapped for the session at once: it is not left in the address bar.
    expect(page).to_have_url(re.compile(r"/compte/mot-de-passe/nouveau/[^/]+/choisir/$"))
    page.get_by_label("New password", exact=True).fill("short")
    page.get_by_label("New password, again").fill("short")
    page.get_by_role("button", name="Change my password").click()
    expect(page.locator("#error-summary")).to_be_focused()
    check(page, "en-password-reset-choose-refused")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password, again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change my password").click()

    expect(page.get_by_text("Your password has been changed.")).to_be_visible()
    sign_in_with_password(page, marie.email, NEW_PASSWORD)
    expect(page.get_by_role("link", name="My appointments")).to_be_visible()
    assert authenticate(username=marie.email, password=PASSWORD) is None

    notices = [m for m in smtp_server.messages if "changed" in str(m["Subject"])]
    assert len(notices) == 1

    spent = make_page(locale="en-CA")
    spent.goto(link)
    expect(spent.get_by_role("heading", name="This link no longer works")).to_be_visible()
    check(spent, "en-password-reset-dead-link")


def add_virtual_authenticator(page: Page) -> Any:
    """A phone-like authenticator: discoverable credentials, user verification passes."""
    devtools = page.context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return devtools


def test_a_patient_adds_signs_in_with_and_removes_a_passkey(
    make_page: PageFactory, live_server: LiveServer, settings: Any, marie: User
) -> None:
    settings.WEBAUTHN_ORIGIN = live_server.url
    settings.WEBAUTHN_RP_ID = urlsplit(live_server.url).hostname
    page = make_page(locale="en-CA")
    add_virtual_authenticator(page)

    page.goto("/compte/connexion/?next=/compte/cles-d-acces/")
    expect(page.get_by_role("button", name="Use a passkey")).to_be_visible()
    sign_in_with_password(page, marie.email, PASSWORD)
    expect(page.get_by_role("heading", name="Passkeys", exact=True)).to_be_visible()
    expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
    check(page, "en-passkeys-empty")

    page.get_by_label("Name of this passkey").fill("Test phone")
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Add a passkey").click()
    codes = page.locator("[data-recovery-list] li")
    expect(codes).to_have_count(10)
    expect(page.locator("#recovery-codes")).to_be_focused()
    check(page, "en-passkeys-recovery-codes")
    page.get_by_role("link", name="I have kept them").click()
    expect(page.get_by_role("status")).to_have_text("Your passkey was added.")
    mine = page.get_by_role("region", name="My passkeys")
    expect(mine).to_contain_text("Test phone")
    expect(mine).to_contain_text("Never")  # not used yet
    check(page, "en-passkeys-one")
    passkey = Passkey.objects.get(user=marie)
    assert (passkey.name, passkey.last_used_at) == ("Test phone", None)

    page.get_by_role("button", name="Sign out").click()
    page.goto("/compte/connexion/?next=/mes-rendez-vous/")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(re.compile(r"/mes-rendez-vous/$"))
    expect(page.get_by_role("heading", name="My appointments")).to_be_visible()
    passkey.refresh_from_db()
    assert passkey.last_used_at is not None

    page.goto("/compte/cles-d-acces/")
    page.get_by_role("button", name="Remove Test phone").click()
    expect(page.get_by_role("status")).to_have_text("The passkey was removed.")
    assert not Passkey.objects.filter(user=marie).exists()

    # The authenticator still holds the credential; the site no longer knows it.
    page.get_by_role("button", name="Sign out").click()
    page.goto("/compte/connexion/")
    page.get_by_role("button", name="Use a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("could not be verified")
    check(page, "en-sign-in-passkey-refused")
    # The refusal is a 401 to the script's request, which Chromium logs as an error.
    problems = make_page.problems(page)
    assert [e for e in problems.console_errors if "status of 401" not in e] == []
    problems.clear()


def test_without_webauthn_the_passkey_button_stays_hidden(make_page: PageFactory) -> None:
    page = make_page(locale="en-CA")
    page.add_init_script("delete window.PublicKeyCredential;")
    page.goto("/compte/connexion/")
    expect(page.get_by_role("button", name="Use a passkey")).to_be_hidden()
    expect(
        page.get_by_text("Signing in with a passkey needs JavaScript and a browser that supports")
    ).to_be_visible()
