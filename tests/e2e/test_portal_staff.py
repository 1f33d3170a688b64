"""An administrator invites a new colleague, in a real Chromium with a real SMTP server:
Marc (Laval's administrator) invites julie@example.test as a receptionist; the email
arrives; Julie opens its link, is told to sign in, signs in with her password and
authenticator code, comes back to the invitation, joins, and lands on the agenda. Marc
then removes her, and her very next page is a 404. Screenshots in
var/test-artifacts/screenshots.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django_otp.oath import hotp
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from rdv.accounts.mfa import provision_confirmed_totp
from rdv.clinics.models import Membership
from rdv.core import clock
from tests.conftest import PASSWORD, Cast
from tests.e2e.support import (
    Inbox,
    PageFactory,
    assert_accessible,
    first_link,
    screenshot,
    staff_sign_in,
)
from tests.factories import UserFactory

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


def test_an_admin_invites_a_colleague_who_joins_then_is_removed(
    make_page: PageFactory, smtp_server: Inbox, live_server: LiveServer, settings: Any, cast: Cast
) -> None:
    settings.SITE_URL = live_server.url
    julie = UserFactory.create(
        email="julie@example.test", first_name="Julie", last_name="Gagnon", preferred_language="en"
    )
    device = provision_confirmed_totp(julie)
    cast.marc.preferred_language = "en"
    cast.marc.save()
    laval = cast.laval.pk

    admin = make_page(locale="en-CA")
    staff_sign_in(admin, cast.marc)
    admin.goto(f"/clinique/{laval}/equipe/")
    expect(admin.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    expect(admin.get_by_text("No open invitation.")).to_be_visible()
    admin.locator("#id_email").fill("Julie@Example.test")
    admin.locator("#id_role").select_option("receptionist")
    admin.get_by_role("button", name="Send the invitation").click()
    expect(admin.get_by_role("status")).to_contain_text("on its way to julie@example.test")
    row = admin.get_by_role("row", name=re.compile("julie@example.test"))
    expect(row).to_contain_text("Receptionist")
    check(admin, "en-portal-staff")

    email = smtp_server.wait_for("julie@example.test")
    assert "GMF Laval" in str(email["Subject"])
    link = first_link(email)
    assert link.startswith(f"{live_server.url}/invitation-equipe/")

    invitee = make_page(locale="en-CA")
    invitee.goto(link)
    expect(invitee.get_by_role("heading", level=1)).to_contain_text("GMF Laval")
    expect(invitee.get_by_text("Sign in with julie@example.test.", exact=False)).to_be_visible()
    check(invitee, "en-staff-invitation-sign-in")
    invitee.get_by_role("link", name="Sign in", exact=True).last.click()
    step = (int(clock.now().timestamp()) - device.t0) // device.step
    invitee.locator("#id_email").fill(julie.email)
    invitee.locator("#id_password").fill(PASSWORD)
    invitee.locator("#id_otp").fill(f"{hotp(device.bin_key, step, digits=device.digits):06d}")
    invitee.locator("main form button[type=submit]").first.click()

    # Back on the invitation, now with both factors: one button left.
    expect(invitee).to_have_url(re.compile(r"/invitation-equipe/[\w-]+/$"))
    join = invitee.get_by_role("button", name="Join GMF Laval")
    expect(join).to_be_visible()
    check(invitee, "en-staff-invitation-ready")
    join.click()
    expect(invitee).to_have_url(re.compile(rf"/clinique/{laval}/agenda/"))
    expect(invitee.get_by_role("status")).to_contain_text("Welcome to the staff of GMF Laval")
    expect(invitee.locator("nav.portal")).to_contain_text("Receptionist")
    assert Membership.objects.get(user=julie).role == "receptionist"

    admin.goto(f"/clinique/{laval}/equipe/")
    expect(admin.get_by_text("No open invitation.")).to_be_visible()
    admin.get_by_role("button", name="Remove from the staff — Julie Gagnon").click()
    expect(admin.get_by_role("status")).to_contain_text("Julie Gagnon is removed")
    assert not Membership.objects.filter(user=julie).exists()

    response = invitee.goto(f"/clinique/{laval}/agenda/")
    assert response is not None
    assert response.status == 404
