"""The forgotten-password and passkey pages, through Django's test client.

What each page answers and the "no"s: the same answer for known and unknown emails, dead
links as a clear 400, passkeys handled only by their owner, CSRF on every ceremony step.
The browser journeys (the real WebAuthn ceremony included) are in tests/e2e.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdv.accounts.models import Passkey, User
from rdv.audit.models import AuditEntry
from rdv.core import clock
from tests.accounts.helpers import SoftAuthenticator, enrol, totp_code
from tests.conftest import PASSWORD, Cast, sent_mail

NEW_PASSWORD = "a quiet lake at dawn"
LINK = re.compile(r"https?://[^/\s]+(?P<path>/compte/mot-de-passe/nouveau/[^\s]+/)")
REQUEST = "/compte/mot-de-passe/oublie/"
SENT = "/compte/mot-de-passe/envoye/"
PASSKEYS = "/compte/cles-d-acces/"


def english() -> Client:
    return Client(headers={"accept-language": "en"})


def signed_in(user: User, **client: Any) -> Client:
    browser = Client(headers={"accept-language": "en"}, **client)
    browser.force_login(user)
    return browser


def ask(client: Client, email: str, capture: Any) -> Any:
    with capture(execute=True):
        return client.post(REQUEST, {"email": email})


def link_path(capture: Any, email: str) -> str:
    ask(Client(), email, capture)
    found = LINK.search(str(sent_mail()[-1].body))
    assert found is not None
    return found["path"]


def no_inline_code(html: str) -> None:
    """The strict CSP refuses inline script and style: pages must not need them."""
    assert " style=" not in html
    assert "<style" not in html
    assert not re.search(r"<script(?![^>]*\ssrc=)", html)


# --- Asking for a link ------------------------------------------------------------------


def test_the_sign_in_page_offers_a_reset_and_a_passkey(cast: Cast) -> None:
    page = english().get("/compte/connexion/")
    assert f'href="{REQUEST}"' in page.text
    assert "Forgot your password?" in page.text
    # Without the script the passkey button stays hidden, and the page says why.
    assert re.search(r"<div hidden data-passkey-actions><button[^>]*data-passkey-start", page.text)
    assert "needs JavaScript and a browser that supports passkeys" in page.text
    assert "<title>Sign in · RDV Santé</title>" in page.text
    assert page.text.count("/static/web/passkeys") == 1
    no_inline_code(page.text)


def test_known_and_unknown_emails_get_the_same_answer_and_only_one_gets_mail(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    page = english().get(REQUEST)
    assert page.status_code == 200
    no_inline_code(page.text)
    known = ask(english(), "marie@example.test", django_capture_on_commit_callbacks)
    unknown = ask(english(), "nobody@example.test", django_capture_on_commit_callbacks)
    assert (known.status_code, known["Location"]) == (302, SENT)
    assert (unknown.status_code, unknown["Location"]) == (302, SENT)
    assert [m.to for m in sent_mail()] == [["marie@example.test"]]
    sent = english().get(SENT)
    assert "If an account uses this address" in sent.text
    assert "marie@example.test" not in sent.text


def test_a_malformed_email_is_explained(cast: Cast) -> None:
    page = english().post(REQUEST, {"email": "not-an-email"})
    assert page.status_code == 422
    assert 'id="error-summary"' in page.text
    assert sent_mail() == []


@pytest.mark.rate_limits
def test_asking_is_limited_per_email_and_per_address(
    cast: Cast, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "password_reset": "3/h"}
    capture = django_capture_on_commit_callbacks
    for n in range(3):
        ask(Client(REMOTE_ADDR=f"10.0.0.{n}"), "marie@example.test", capture)
    per_email = ask(Client(REMOTE_ADDR="10.0.0.9"), "marie@example.test", capture)
    assert per_email.status_code == 429
    assert int(per_email["Retry-After"]) > 0
    assert len(sent_mail()) == 3

    one_address = Client(REMOTE_ADDR="10.0.1.1")
    for n in range(3):
        ask(one_address, f"someone{n}@example.test", capture)
    per_address = ask(one_address, "paul@example.test", capture)
    assert per_address.status_code == 429


# --- Following the link -----------------------------------------------------------------


def test_following_the_link_sets_a_new_password_and_sends_to_sign_in(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    path = link_path(django_capture_on_commit_callbacks, cast.marie.email)
    browser = english()
    moved = browser.get(path)
    # The token leaves the address bar at once (history, Referer), for the session.
    assert moved.status_code == 302
    form_path = moved["Location"]
    assert form_path.endswith("/choisir/")
    page = browser.get(form_path)
    assert page.status_code == 200
    assert "marie@example.test" in page.text
    assert 'autocomplete="new-password"' in page.text
    no_inline_code(page.text)

    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(
            form_path, {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
        )
    assert (done.status_code, done["Location"]) == (302, "/compte/connexion/")
    assert "Your password has been changed" in browser.get("/compte/connexion/").text
    assert sent_mail()[-1].to == [cast.marie.email]  # "your password was changed"

    old = english().post("/compte/connexion/", {"email": cast.marie.email, "password": PASSWORD})
    assert old.status_code == 401
    new = english().post(
        "/compte/connexion/", {"email": cast.marie.email, "password": NEW_PASSWORD}
    )
    assert new.status_code == 302
    # The link is spent.
    assert english().get(path).status_code == 400
    assert browser.get(form_path).status_code == 400


def test_two_different_passwords_or_a_weak_one_are_explained(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    browser = english()
    form_path = browser.get(link_path(django_capture_on_commit_callbacks, cast.marie.email))[
        "Location"
    ]
    mismatch = browser.post(
        form_path, {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD + "!"}
    )
    assert mismatch.status_code == 422
    assert "The two passwords are not the same." in mismatch.text
    weak = browser.post(form_path, {"new_password": "short", "new_password_again": "short"})
    assert weak.status_code == 422
    assert "at least 10 characters" in weak.text
    assert 'id="error-summary"' in weak.text
    # Neither spent the link.
    assert browser.get(form_path).status_code == 200


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_dead_link_is_a_clear_400_page(
    cast: Cast, django_capture_on_commit_callbacks: Any, language: str
) -> None:
    path = link_path(django_capture_on_commit_callbacks, cast.marie.email)
    tampered = path[:-2] + ("0" if path[-2] != "0" else "1") + "/"
    with clock.frozen_now(clock.now() + timedelta(hours=2)):
        expired = Client(headers={"accept-language": language}).get(path)
    for page in (expired, Client(headers={"accept-language": language}).get(tampered)):
        assert page.status_code == 400
        assert f'<html lang="{language}-CA">' in page.text
        assert f'href="{REQUEST}"' in page.text
        assert 'role="alert"' in page.text
    if language == "en":
        assert "This password reset link has expired or was already used." in expired.text


def test_the_form_address_alone_is_a_dead_link(cast: Cast) -> None:
    """Without the session the real link started, ".../choisir/" holds no token."""
    uid = "MQ"
    assert english().get(f"/compte/mot-de-passe/nouveau/{uid}/choisir/").status_code == 400
    posted = english().post(
        f"/compte/mot-de-passe/nouveau/{uid}/choisir/",
        {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD},
    )
    assert posted.status_code == 400


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    uid=st.text(alphabet=st.characters(blacklist_characters="/?#%\x00"), min_size=1, max_size=30),
    token=st.text(alphabet=st.characters(blacklist_characters="/?#%\x00"), min_size=1, max_size=60),
)
def test_no_link_produces_a_server_error(cast: Cast, uid: str, token: str) -> None:
    path = f"/compte/mot-de-passe/nouveau/{uid}/{token}/"
    assert english().get(path).status_code in (302, 400, 404)
    assert english().post(path, {"new_password": "x"}).status_code in (302, 400, 404)


# --- Passkeys: the page -----------------------------------------------------------------


def csrf(client: Client) -> str:
    """The token a page gives its script (the sign-in page renders one for anybody)."""
    client.get("/compte/connexion/")
    return client.cookies["csrftoken"].value


def post(client: Client, path: str, data: dict[str, Any] | None = None) -> Any:
    return client.post(path, {**(data or {}), "csrfmiddlewaretoken": csrf(client)})


def register(client: Client, device: SoftAuthenticator, **fields: str) -> Any:
    begin = {"password": PASSWORD, **{k: v for k, v in fields.items() if k == "otp"}}
    begun = post(client, f"{PASSKEYS}ajout/debut/", begin)
    assert begun.status_code == 200, begun.content
    body = begun.json()
    return post(
        client,
        f"{PASSKEYS}ajout/fin/",
        {
            "challenge_id": body["challenge_id"],
            "credential": json.dumps(device.create(body["options"])),
            "name": fields.get("name", "Mon téléphone"),
        },
    )


def sign_in(client: Client, device: SoftAuthenticator, next_url: str = "", **get: Any) -> Any:
    begun = post(client, f"{PASSKEYS}connexion/debut/").json()
    return post(
        client,
        f"{PASSKEYS}connexion/fin/",
        {
            "challenge_id": begun["challenge_id"],
            "credential": json.dumps(device.get(begun["options"], **get)),
            "next": next_url,
        },
    )


def test_the_passkeys_page_needs_a_session(cast: Cast) -> None:
    page = Client().get(PASSKEYS)
    assert page.status_code == 302
    assert page["Location"].startswith("/compte/connexion/?next=")


def test_a_patient_adds_a_passkey_sees_it_and_gets_recovery_codes(cast: Cast) -> None:
    browser = signed_in(cast.marie, enforce_csrf_checks=True)
    empty = browser.get(PASSKEYS)
    assert "You have no passkey yet." in empty.text
    assert re.search(r"<div hidden data-passkey-actions><button[^>]*data-passkey-start", empty.text)
    no_inline_code(empty.text)

    added = register(browser, SoftAuthenticator(), name="Mon téléphone")
    assert added.status_code == 200
    assert len(added.json()["recovery_codes"]) == 10
    assert added.json()["redirect"] == PASSKEYS
    page = browser.get(PASSKEYS)
    assert "Mon téléphone" in page.text
    assert "Your passkey was added." in page.text
    assert "Never" in page.text  # not used yet
    assert 'name="otp"' in page.text  # a second passkey will need a code
    assert Passkey.objects.get(user=cast.marie).name == "Mon téléphone"


def test_every_ceremony_step_needs_the_csrf_token(cast: Cast) -> None:
    browser = signed_in(cast.marie, enforce_csrf_checks=True)
    for path in ("ajout/debut/", "ajout/fin/", "connexion/debut/", "connexion/fin/"):
        assert browser.post(f"{PASSKEYS}{path}").status_code == 403
    assert Client(enforce_csrf_checks=True).post(f"{PASSKEYS}connexion/debut/").status_code == 403


def test_registering_needs_a_session_and_answers_in_json(cast: Cast) -> None:
    for path in ("ajout/debut/", "ajout/fin/"):
        response = english().post(f"{PASSKEYS}{path}")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "not_authenticated"
    assert english().get(f"{PASSKEYS}ajout/debut/").status_code == 405


def test_adding_a_passkey_needs_the_password_again(cast: Cast) -> None:
    """A session left open (or stolen) must not be enough to plant a new way in."""
    browser = signed_in(cast.paul)
    for data in ({}, {"password": "not the password"}):
        refused = post(browser, f"{PASSKEYS}ajout/debut/", data)
        assert refused.status_code in (401, 422)
        assert "challenge_id" not in refused.json()
    assert register(browser, SoftAuthenticator()).status_code == 200
    assert Passkey.objects.filter(user=cast.paul).count() == 1


def test_a_second_factor_is_needed_to_add_another_one(cast: Cast) -> None:
    device = enrol(cast.sophie)
    browser = signed_in(cast.sophie)
    refused = post(browser, f"{PASSKEYS}ajout/debut/", {"password": PASSWORD})
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "second_factor_required",
        "message": "Enter the code from your authenticator app, or a recovery code.",
    }
    assert register(browser, SoftAuthenticator(), otp=totp_code(device)).status_code == 200


def test_a_bad_credential_is_refused_in_json(cast: Cast) -> None:
    browser = signed_in(cast.paul)
    begun = post(browser, f"{PASSKEYS}ajout/debut/", {"password": PASSWORD}).json()
    for credential in ("not json", "[1, 2]", json.dumps({"id": "x"})):
        response = post(
            browser,
            f"{PASSKEYS}ajout/fin/",
            {"challenge_id": begun["challenge_id"], "credential": credential},
        )
        assert response.status_code == 422
        assert response.json()["error"]["message"]
    assert not Passkey.objects.exists()


# --- Passkeys: signing in ---------------------------------------------------------------


@pytest.fixture
def maries_phone(cast: Cast) -> SoftAuthenticator:
    device = SoftAuthenticator()
    assert register(signed_in(cast.marie), device).status_code == 200
    return device


def test_signing_in_with_a_passkey_starts_a_session_and_goes_on(
    cast: Cast, maries_phone: SoftAuthenticator
) -> None:
    browser = english()
    assert browser.get("/mes-rendez-vous/").status_code == 302
    done = sign_in(browser, maries_phone, next_url="/mes-rendez-vous/")
    assert done.status_code == 200
    assert done.json() == {"redirect": "/mes-rendez-vous/"}
    assert browser.get("/mes-rendez-vous/").status_code == 200
    assert AuditEntry.objects.filter(
        action="auth.passkey", actor_id=cast.marie.pk, actor_role="patient", outcome="success"
    ).exists()
    assert Passkey.objects.get(user=cast.marie).last_used_at == clock.now()


def test_a_passkey_sign_in_never_redirects_off_site(
    cast: Cast, maries_phone: SoftAuthenticator
) -> None:
    done = sign_in(english(), maries_phone, next_url="https://evil.example/")
    assert done.json() == {"redirect": "/"}


def test_a_refused_passkey_starts_no_session(cast: Cast, maries_phone: SoftAuthenticator) -> None:
    browser = english()
    refused = sign_in(browser, maries_phone, tamper=True)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == (
        "This passkey could not be verified. Please try again."
    )
    assert browser.get("/mes-rendez-vous/").status_code == 302


def test_staff_sign_in_with_a_passkey_is_audited_with_their_role(cast: Cast) -> None:
    device = SoftAuthenticator()
    totp = enrol(cast.sophie)
    assert register(signed_in(cast.sophie), device, otp=totp_code(totp)).status_code == 200
    assert sign_in(english(), device).status_code == 200
    assert AuditEntry.objects.filter(
        action="auth.passkey", actor_id=cast.sophie.pk, actor_role="receptionist"
    ).exists()


@pytest.mark.rate_limits
def test_passkey_sign_ins_are_rate_limited(cast: Cast, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "signin": "2/m"}
    browser = english()
    statuses = [post(browser, f"{PASSKEYS}connexion/debut/").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


# --- Passkeys: removing -----------------------------------------------------------------


def test_a_patient_removes_a_passkey_and_it_is_audited(
    cast: Cast, maries_phone: SoftAuthenticator
) -> None:
    passkey = Passkey.objects.get(user=cast.marie)
    browser = signed_in(cast.marie)
    assert browser.get(f"{PASSKEYS}{passkey.pk}/supprimer/").status_code == 405
    removed = browser.post(f"{PASSKEYS}{passkey.pk}/supprimer/")
    assert (removed.status_code, removed["Location"]) == (302, PASSKEYS)
    assert "The passkey was removed." in browser.get(PASSKEYS).text
    assert not Passkey.objects.exists()
    assert AuditEntry.objects.filter(
        action="mfa.passkey.remove", actor_id=cast.marie.pk, object_id=str(passkey.pk)
    ).exists()
    assert sign_in(english(), maries_phone).status_code == 401


def test_someone_elses_passkey_is_not_found(cast: Cast, maries_phone: SoftAuthenticator) -> None:
    passkey = Passkey.objects.get(user=cast.marie)
    assert signed_in(cast.paul).post(f"{PASSKEYS}{passkey.pk}/supprimer/").status_code == 404
    assert signed_in(cast.paul).post(f"{PASSKEYS}999999/supprimer/").status_code == 404
    assert Client().post(f"{PASSKEYS}{passkey.pk}/supprimer/").status_code == 302  # sign in
    assert Passkey.objects.filter(pk=passkey.pk).exists()
    assert "Mon téléphone" not in signed_in(cast.paul).get(PASSKEYS).text


def test_staff_cannot_remove_their_last_second_factor(cast: Cast) -> None:
    code = totp_code(enrol(cast.sophie))
    browser = signed_in(cast.sophie)
    assert register(browser, SoftAuthenticator(), otp=code).status_code == 200
    # Her authenticator app goes: the passkey is now her only factor.
    TOTPDevice.objects.filter(user=cast.sophie).delete()
    passkey = Passkey.objects.get(user=cast.sophie)
    refused = browser.post(f"{PASSKEYS}{passkey.pk}/supprimer/")
    assert refused.status_code == 302
    assert "Clinic staff must keep a second factor." in browser.get(PASSKEYS).text
    assert Passkey.objects.filter(pk=passkey.pk).exists()
