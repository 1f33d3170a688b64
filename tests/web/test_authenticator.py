"""The authenticator-app page (/compte/authentificateur/), through Django's test client.

Julie, invited to Laval's staff, signs in with her password, sets up an app with a code
computed from the secret the page shows (RFC 6238, as her phone would), keeps her recovery
codes and joins. The "no"s: a wrong code or password (422, nothing confirmed), a missing or
wrong current code when a factor exists (step-up, as the API), staff with no factor left,
another session, the rate limit. The browser journey is in tests/e2e/test_authenticator.py.
"""

from __future__ import annotations

import re
from base64 import b32decode
from typing import Any

import pytest
from django.test import Client
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts import mfa
from rdv.accounts.models import Passkey, RecoveryCode, User
from rdv.audit.models import AuditEntry
from rdv.clinics import staff
from rdv.clinics.models import Membership, StaffInvitation
from rdv.core import clock
from rdv.web.portal import SECOND_FACTOR_KEY
from tests.accounts.helpers import enrol, totp_code
from tests.conftest import PASSWORD, Cast, local
from tests.factories import UserFactory

PAGE = "/compte/authentificateur/"
BEGIN = "/compte/authentificateur/debut/"
CONFIRM = "/compte/authentificateur/confirmer/"
RENEW = "/compte/authentificateur/codes-de-secours/"
SECRET = re.compile(r"<code data-totp-secret>([A-Z2-7 ]+)</code>")
CODE = re.compile(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>")
INVITATION_TOKEN = "invitation-secret-for-julie-0123456789abcdef"


def page(response: Any) -> str:
    return str(response.content.decode())


def browser(user: User, language: str = "en") -> Client:
    """Signed in with a password only (no second factor proved in this session)."""
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def code_from(html: str, *, steps: int = 0) -> str:
    """What the phone shows once the person has typed the key the page displays."""
    found = SECRET.search(html)
    assert found is not None, "the page shows no secret"
    key = b32decode(found.group(1).replace(" ", ""))
    step = int(clock.now().timestamp()) // 30 + steps
    return f"{hotp(key, step, digits=6):06d}"


def no_inline_code(html: str) -> None:
    """The strict CSP refuses inline script and style: pages must not need them."""
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)


@pytest.fixture
def julie(db: Any) -> User:
    user: User = UserFactory.create(email="julie@example.test", first_name="Julie")
    return user


def invite_julie(cast: Cast) -> str:
    """An open invitation to Laval's staff for Julie: the path its link opens."""
    StaffInvitation.objects.create(
        clinic=cast.laval,
        email="julie@example.test",
        role="receptionist",
        invited_by=cast.marc,
        token_hash=staff.token_hash(INVITATION_TOKEN),
        created_at=local(2026, 11, 23, 8, 0),
        expires_at=local(2026, 11, 30, 8, 0),
    )
    return f"/invitation-equipe/{INVITATION_TOKEN}/"


def begin(client: Client, **extra: str) -> Any:
    return client.post(BEGIN, {"password": PASSWORD, **extra})


# --- The page -----------------------------------------------------------------------------


def test_a_visitor_is_sent_to_sign_in(db: Any) -> None:
    response = Client().get(PAGE)
    assert response.status_code == 302
    assert response["Location"].startswith("/compte/connexion/?next=")
    assert not TOTPDevice.objects.exists()


def test_the_page_offers_to_set_up_an_app(julie: User) -> None:
    response = browser(julie).get(PAGE)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = page(response)
    assert "No authenticator app is set up on your account." in html
    assert f'action="{BEGIN}"' in html
    assert 'name="otp"' not in html  # nothing to step up from yet
    assert f'action="{RENEW}"' not in html  # no factor, no recovery codes to renew
    assert 'href="/compte/cles-d-acces/"' in html
    no_inline_code(html)


def test_the_profile_and_passkey_pages_link_to_it(julie: User) -> None:
    client = browser(julie)
    for where in ("/compte/profil/", "/compte/cles-d-acces/"):
        assert f'href="{PAGE}"' in page(client.get(where))


def test_the_steps_are_post_only_and_need_the_csrf_token(julie: User) -> None:
    client = browser(julie)
    for path in (BEGIN, CONFIRM, RENEW):
        assert client.get(path)["Location"] == PAGE
    strict = Client(enforce_csrf_checks=True, HTTP_HOST="127.0.0.1")
    strict.force_login(julie)
    assert strict.post(BEGIN, {"password": PASSWORD}).status_code == 403
    assert not TOTPDevice.objects.exists()


# --- Setting up ---------------------------------------------------------------------------


def test_julie_sets_up_an_app_and_keeps_her_recovery_codes(julie: User) -> None:
    client = browser(julie)
    shown = begin(client)
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    html = page(shown)
    assert '<svg width="' in html  # the QR code, inline
    assert 'role="img" aria-label="QR code to scan with your authenticator app"' in html
    assert re.search(r"<code data-totp-secret>([A-Z2-7]{4} ){7}[A-Z2-7]{4}</code>", html)
    no_inline_code(html)
    pending = TOTPDevice.objects.get(user=julie)
    assert not pending.confirmed

    confirmed = client.post(CONFIRM, {"code": code_from(html)})
    assert confirmed.status_code == 200
    assert "no-store" in confirmed["Cache-Control"]
    codes = CODE.findall(page(confirmed))
    assert len(codes) == 10
    assert "They are shown only now." in page(confirmed)
    assert TOTPDevice.objects.get(user=julie).confirmed
    assert RecoveryCode.objects.filter(user=julie, used_at__isnull=True).count() == 10
    assert mfa.verify_second_factor(julie, codes[0])  # real codes, each good once

    # Shown once: the page itself never lists them, and the step cannot be replayed.
    later = client.get(PAGE)
    assert not CODE.search(page(later))
    assert "On: signing in with your password also asks for a code" in page(later)
    assert "You have 9 unused recovery codes." in page(later)
    replay = client.post(CONFIRM, {"code": code_from(html)})
    assert replay.status_code == 302
    assert not CODE.search(page(client.get(PAGE)))
    assert [e.outcome for e in AuditEntry.objects.filter(action="mfa.totp.confirm")] == ["success"]


def test_the_code_of_the_next_step_is_accepted_too(julie: User) -> None:
    client = browser(julie)
    html = page(begin(client))
    assert client.post(CONFIRM, {"code": code_from(html, steps=1)}).status_code == 200
    assert TOTPDevice.objects.get(user=julie).confirmed


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_wrong_code_is_a_422_and_confirms_nothing(julie: User, language: str) -> None:
    client = browser(julie, language)
    html = page(begin(client))
    right = code_from(html)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    refused = client.post(CONFIRM, {"code": wrong})
    assert refused.status_code == 422
    assert 'id="id_code_error"' in page(refused)
    if language == "en":
        assert "This code does not match. Check the time on your phone" in page(refused)
    assert SECRET.search(page(refused))  # the same key again, to try once more
    assert not TOTPDevice.objects.get(user=julie).confirmed
    assert not RecoveryCode.objects.filter(user=julie).exists()
    assert not client.session.get(SECOND_FACTOR_KEY)
    assert AuditEntry.objects.filter(action="mfa.totp.confirm", outcome="failure").count() == 1
    # Still pending: the right code works after a wrong one.
    assert client.post(CONFIRM, {"code": right}).status_code == 200


@pytest.mark.parametrize("typed", ["", "12345", "abcdef", "1234567", "１２３４５６"])
def test_a_malformed_code_is_explained(julie: User, typed: str) -> None:
    client = browser(julie)
    begin(client)
    refused = client.post(CONFIRM, {"code": typed})
    assert refused.status_code == 422
    assert 'id="id_code_error"' in page(refused)
    assert not TOTPDevice.objects.get(user=julie).confirmed


def test_a_wrong_password_is_a_422_and_starts_nothing(julie: User) -> None:
    refused = browser(julie).post(BEGIN, {"password": "not my password"})
    assert refused.status_code == 422
    assert "Incorrect email or password." in page(refused)
    assert 'id="id_password_error"' in page(refused)
    assert not SECRET.search(page(refused))
    assert not TOTPDevice.objects.exists()


def test_another_session_cannot_confirm_or_see_the_key(julie: User) -> None:
    first = browser(julie)
    html = page(begin(first))
    other = browser(julie)
    refused = other.post(CONFIRM, {"code": code_from(html)})
    assert refused.status_code == 302
    assert "No authenticator app is being set up" in page(other.get(PAGE))
    assert not SECRET.search(page(other.get(PAGE)))
    assert not TOTPDevice.objects.get(user=julie).confirmed
    assert not other.session.get(SECOND_FACTOR_KEY)


# --- Step-up: someone with a factor proves it, as the API requires --------------------------


def test_adding_a_phone_needs_a_current_code(julie: User) -> None:
    device = enrol(julie)
    mfa.issue_recovery_codes(julie)
    client = browser(julie)
    html = page(client.get(PAGE))
    assert 'name="otp"' in html
    assert "Set up another phone" in html
    # Two forms ask for a password and a code: each field keeps its own id (labels work).
    assert html.count('id="id_password"') == html.count('id="id_otp"') == 1
    assert html.count('id="id_renew-password"') == html.count('id="id_renew-otp"') == 1

    missing = begin(client)
    assert missing.status_code == 422
    assert 'id="id_otp_error"' in page(missing)
    wrong = begin(client, otp=totp_code(device, steps=-3))
    assert wrong.status_code == 422
    assert "This code is not valid." in page(wrong)
    assert not TOTPDevice.objects.filter(user=julie, confirmed=False).exists()
    assert AuditEntry.objects.filter(action="mfa.step_up", outcome="failure").count() == 1

    shown = begin(client, otp=totp_code(device))
    assert shown.status_code == 200
    second = client.post(CONFIRM, {"code": code_from(page(shown))})
    # She still holds recovery codes: none are issued again, straight back to the page.
    assert second.status_code == 302
    assert TOTPDevice.objects.filter(user=julie, confirmed=True).count() == 2
    assert "Your authenticator app is set up." in page(client.get(PAGE))


def test_a_passkey_holder_steps_up_with_a_recovery_code(julie: User, cast: Cast) -> None:
    Passkey.objects.create(
        user=julie, credential_id="x" * 32, public_key=b"k", sign_count=0, created_at=clock.now()
    )
    (code, *_rest) = mfa.issue_recovery_codes(julie)
    client = browser(julie)
    assert begin(client).status_code == 422
    assert begin(client, otp=code).status_code == 200


def test_staff_with_no_factor_left_cannot_enrol_with_a_password(cast: Cast) -> None:
    # Sophie's factors were reset by her administrator (a lost phone); an old session of
    # hers must not plant a phone with the password alone: the API wants an enrolment code.
    client = browser(cast.sophie)
    html = page(client.get(PAGE))
    assert "with an enrolment code from their clinic administrator" in html
    assert f'action="{BEGIN}"' not in html
    refused = begin(client)
    assert refused.status_code == 403
    assert not TOTPDevice.objects.exists()


# --- The session counts as two factors afterwards -----------------------------------------


def test_julie_joins_the_staff_right_after_setting_up_her_app(julie: User, cast: Cast) -> None:
    path = invite_julie(cast)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    # A real password sign-in: she has no factor yet, so the password is enough.
    signed = client.post("/compte/connexion/", {"email": julie.email, "password": PASSWORD})
    assert signed.status_code == 302
    invitation = page(client.get(path))
    assert f'href="{PAGE}?next={path}"' in invitation
    assert client.post(path).status_code == 403  # no factor yet

    html = page(client.get(f"{PAGE}?next={path}"))
    assert f'value="{path}"' in html
    shown = client.post(BEGIN, {"password": PASSWORD, "next": path})
    assert client.post(path).status_code == 403  # started, not confirmed: still not
    key_before = client.session.session_key
    done = client.post(CONFIRM, {"code": code_from(page(shown)), "next": path})
    assert done.status_code == 200
    assert f'href="{path}"' in page(done)  # "I have kept them" goes back to the invitation
    assert client.session.session_key != key_before
    assert client.session.get(SECOND_FACTOR_KEY)

    joined = client.post(path)
    assert joined.status_code == 302
    assert joined["Location"] == f"/clinique/{cast.laval.pk}/agenda/"
    assert client.get(joined["Location"]).status_code == 200
    assert Membership.objects.get(user=julie).clinic == cast.laval


def test_a_staff_member_reaches_the_portal_after_adding_a_phone(cast: Cast) -> None:
    device = enrol(cast.sophie)
    mfa.issue_recovery_codes(cast.sophie)
    client = browser(cast.sophie)  # a session that has not proved a factor
    agenda = f"/clinique/{cast.laval.pk}/agenda/"
    assert client.get(agenda).status_code == 403
    shown = begin(client, otp=totp_code(device))
    assert client.post(CONFIRM, {"code": code_from(page(shown))}).status_code == 302
    assert client.get(agenda).status_code == 200


# --- Recovery codes -----------------------------------------------------------------------


def test_new_recovery_codes_need_a_current_code_and_replace_the_old(julie: User) -> None:
    device = enrol(julie)
    old = mfa.issue_recovery_codes(julie)
    client = browser(julie)
    wrong = client.post(RENEW, {"renew-password": PASSWORD, "renew-otp": "000000"})
    assert wrong.status_code == 422
    assert "This code is not valid." in page(wrong)
    assert not CODE.search(page(wrong))
    bad_password = client.post(RENEW, {"renew-password": "nope", "renew-otp": totp_code(device)})
    assert bad_password.status_code == 422
    assert 'id="id_renew-password_error"' in page(bad_password)

    renewed = client.post(RENEW, {"renew-password": PASSWORD, "renew-otp": totp_code(device)})
    assert renewed.status_code == 200
    assert "no-store" in renewed["Cache-Control"]
    new = CODE.findall(page(renewed))
    assert len(new) == 10
    assert not set(new) & set(old)
    assert not mfa.verify_second_factor(julie, old[1])
    assert mfa.verify_second_factor(julie, new[0])


def test_without_a_factor_there_are_no_recovery_codes_to_renew(julie: User) -> None:
    refused = browser(julie).post(RENEW, {"renew-password": PASSWORD, "renew-otp": "123456"})
    assert refused.status_code == 409
    assert "Set up an authenticator app or a passkey first." in page(refused)
    assert not RecoveryCode.objects.exists()


# --- Limits -------------------------------------------------------------------------------


@pytest.mark.rate_limits
def test_code_guesses_are_rate_limited(julie: User) -> None:
    client = browser(julie)
    html = page(begin(client))  # one attempt counted
    wrong = f"{(int(code_from(html)) + 1) % 1_000_000:06d}"
    statuses = [client.post(CONFIRM, {"code": wrong}).status_code for _ in range(10)]
    assert statuses == [422] * 9 + [429]
    limited = client.post(CONFIRM, {"code": code_from(html)})
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert not TOTPDevice.objects.get(user=julie).confirmed


def test_password_guesses_lock_the_account_like_a_sign_in(julie: User) -> None:
    client = browser(julie)
    statuses = [client.post(BEGIN, {"password": f"guess {n}"}).status_code for n in range(5)]
    assert statuses == [422] * 5
    locked = begin(client)  # even the right password, now
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert not TOTPDevice.objects.exists()
