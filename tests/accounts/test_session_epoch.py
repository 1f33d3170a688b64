"""The "lost my phone" reset (mfa.issue_enrolment_code) ends every web session of the
person at once, even one that proved a second factor (say, on the stolen phone): raising
User.session_epoch changes the session hash Django checks on every request.

Sophie signs in with her password and code and reaches Laval's agenda; Marc, Laval's
administrator, resets her factors; her very next request is signed out, while Marc and
Karim (another clinic) stay signed in. Sessions from before the change (epoch 0) keep the
hash Django has always given them, so deploying it signs no one out.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client, override_settings

from rdv.accounts import mfa
from rdv.accounts.models import User
from rdv.web.portal import SECOND_FACTOR_KEY
from tests.accounts.helpers import enrol, totp_code
from tests.conftest import PASSWORD, Cast, portal_client

OLD_SECRET = "an-older-secret-key-that-was-rotated-out-0123456789-abcdefghijkl"
NEW_SECRET = "the-current-secret-key-after-the-rotation-0123456789-abcdefghijkl"


def agenda(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/agenda/"


def signed_in_with_code(user: User) -> Client:
    """A real sign-in from the page, password and authenticator code."""
    device = enrol(user)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    response = client.post(
        "/compte/connexion/",
        {"email": user.email, "password": PASSWORD, "otp": totp_code(device)},
    )
    assert response.status_code == 302
    assert client.session.get(SECOND_FACTOR_KEY)
    return client


def assert_signed_out(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/compte/connexion/?next=")
    assert SESSION_KEY not in client.session
    assert SECOND_FACTOR_KEY not in client.session  # the session was flushed, not just kept


def test_a_reset_signs_the_person_out_everywhere_at_once(cast: Cast) -> None:
    phone = signed_in_with_code(cast.sophie)  # the phone that was stolen
    desk = portal_client(cast.sophie)  # her other browser
    admin = portal_client(cast.marc)
    elsewhere = portal_client(cast.karim)
    for client in (phone, desk, admin):
        assert client.get(agenda(cast)).status_code == 200
    karim_agenda = f"/clinique/{cast.montreal.pk}/agenda/"
    assert elsewhere.get(karim_agenda).status_code == 200

    mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)

    assert_signed_out(phone, agenda(cast))
    assert_signed_out(desk, agenda(cast))
    # The administrator who reset her, and another clinic's staff, are untouched.
    assert admin.get(agenda(cast)).status_code == 200
    assert elsewhere.get(karim_agenda).status_code == 200
    cast.sophie.refresh_from_db()
    assert cast.sophie.session_epoch == 1
    cast.marc.refresh_from_db()
    assert cast.marc.session_epoch == 0


def test_the_reset_person_can_sign_in_again_afterwards(cast: Cast) -> None:
    """The epoch ends the sessions that existed, not the account: once she has a new
    phone, a new sign-in reaches the portal."""
    client = signed_in_with_code(cast.sophie)
    mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)
    assert_signed_out(client, agenda(cast))

    again = signed_in_with_code(cast.sophie)  # her new phone
    assert again.get(agenda(cast)).status_code == 200
    assert again.session[SESSION_KEY] == str(cast.sophie.pk)


def test_resetting_oneself_signs_oneself_out(cast: Cast) -> None:
    client = portal_client(cast.marc)
    assert client.get(agenda(cast)).status_code == 200
    mfa.issue_enrolment_code(user=cast.marc, issued_by=cast.marc)
    assert cast.marc.session_epoch == 1  # the caller's object is brought up to date
    assert_signed_out(client, agenda(cast))


def test_the_management_command_path_signs_out_too(cast: Cast) -> None:
    client = portal_client(cast.sophie)
    mfa.issue_enrolment_code(user=cast.sophie, issued_by=None)
    assert_signed_out(client, agenda(cast))


def test_each_reset_ends_the_sessions_opened_since_the_last(cast: Cast) -> None:
    mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)
    client = portal_client(cast.sophie)  # opened at epoch 1
    assert client.get(agenda(cast)).status_code == 200
    mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)
    assert_signed_out(client, agenda(cast))


# --- Sessions from before the change ---------------------------------------------------------


def test_at_epoch_zero_the_hash_is_djangos_default(cast: Cast) -> None:
    user = User.objects.get(pk=cast.sophie.pk)
    assert user.session_epoch == 0
    assert user.get_session_auth_hash() == AbstractBaseUser.get_session_auth_hash(user)
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        ours = list(user.get_session_auth_fallback_hash())
        djangos = list(AbstractBaseUser.get_session_auth_fallback_hash(user))
    assert ours == djangos
    assert len(ours) == 1

    user.session_epoch = 1
    assert user.get_session_auth_hash() != AbstractBaseUser.get_session_auth_hash(user)
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        assert list(user.get_session_auth_fallback_hash()) != djangos


def test_a_session_opened_before_the_deploy_keeps_working(cast: Cast) -> None:
    """A session whose stored hash is Django's own formula (as every session opened before
    session_epoch existed) still reaches the portal."""
    client = portal_client(cast.sophie)
    session = client.session
    session[HASH_SESSION_KEY] = AbstractBaseUser.get_session_auth_hash(cast.sophie)
    session.save()
    assert client.get(agenda(cast)).status_code == 200
    assert client.session[SESSION_KEY] == str(cast.sophie.pk)


def test_a_session_signed_under_a_rotated_secret_ends_too(cast: Cast, settings: Any) -> None:
    """Django accepts a session whose hash was made with a key in SECRET_KEY_FALLBACKS: the
    fallback hashes carry the epoch as well, or such a session would survive the reset."""
    settings.SECRET_KEY = OLD_SECRET
    settings.SECRET_KEY_FALLBACKS = []
    old_key = portal_client(cast.sophie)
    also_old = portal_client(cast.sophie)
    settings.SECRET_KEY = NEW_SECRET
    settings.SECRET_KEY_FALLBACKS = [OLD_SECRET]
    assert also_old.get(agenda(cast)).status_code == 200  # rotation alone: still in

    mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)

    assert_signed_out(old_key, agenda(cast))
