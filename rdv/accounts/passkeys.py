"""Passkeys (WebAuthn) with py_webauthn: registration and password-less sign-in.

Challenges live in the database (`WebAuthnChallenge`), not in a session: the API is
stateless (bearer tokens) and a browser may begin and finish on different app servers.
The client gets an opaque `challenge_id`; finishing deletes the row *before* verifying, so
each challenge is good for one attempt, successful or not, and only until it expires.

User verification (PIN, fingerprint, face) is required both at registration and at
sign-in, so a passkey is two factors on its own (something held, something known or
been): a passkey sign-in gives a full token, staff included.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from rdv.accounts import mfa
from rdv.accounts.models import ChallengePurpose, Passkey, User, WebAuthnChallenge
from rdv.accounts.queries import is_staff_member
from rdv.audit import services as audit
from rdv.audit.models import Outcome
from rdv.audit.services import Subject
from rdv.core import clock
from rdv.core.errors import Conflict, NotAuthenticated, NotFound, ValidationError

NAME_MAX_LENGTH = 100


class ChallengeExpired(ValidationError):
    code = "challenge_expired"
    default_message = _("This request has expired or was already used. Please start again.")


def _registration_rejected() -> ValidationError:
    return ValidationError(
        _("This passkey could not be registered. Please try again."),
        field="credential",
        code="passkey_rejected",
    )


def _sign_in_rejected() -> NotAuthenticated:
    return NotAuthenticated(
        _("This passkey could not be verified. Please try again."), code="passkey_rejected"
    )


def user_handle(user: User) -> bytes:
    """WebAuthn's user.id: stable, opaque (no email, no database id), 32 bytes."""
    return salted_hmac(
        "rdv.accounts.passkeys.user_handle", str(user.pk), algorithm="sha256"
    ).digest()


def _new_challenge(purpose: str, user: User | None, challenge: bytes) -> str:
    now = clock.now()
    handle = secrets.token_urlsafe(32)
    WebAuthnChallenge.objects.filter(expires_at__lte=now).delete()
    WebAuthnChallenge.objects.create(
        handle=handle,
        purpose=purpose,
        user=user,
        challenge=challenge,
        expires_at=now + timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS),
    )
    return handle


def _take_challenge(handle: str, purpose: str, user: User | None) -> bytes:
    """The challenge behind `handle`, deleted so that nobody can use it again."""
    row = WebAuthnChallenge.objects.filter(
        handle=handle, purpose=purpose, user=user, expires_at__gt=clock.now()
    ).first()
    # Compare-and-set: of two requests racing with one handle, one deletes the row.
    if row is None or WebAuthnChallenge.objects.filter(pk=row.pk).delete()[0] != 1:
        raise ChallengeExpired(field="challenge_id")
    return bytes(row.challenge)


def _timeout_ms() -> int:
    return int(settings.WEBAUTHN_CHALLENGE_SECONDS) * 1000


# --- Registration -----------------------------------------------------------------------


def begin_registration(user: User, *, otp: str | None = None) -> tuple[str, dict[str, Any]]:
    """(challenge_id, PublicKeyCredentialCreationOptions as JSON) for the browser.

    Like any new factor, this needs the current second factor if the user has one.
    """
    mfa.check_step_up(user, otp)
    existing = Passkey.objects.filter(user=user).values_list("credential_id", flat=True)
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_name=user.email,
        user_id=user_handle(user),
        user_display_name=f"{user.first_name} {user.last_name}".strip() or user.email,
        challenge=secrets.token_bytes(32),
        timeout=_timeout_ms(),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in existing
        ],
    )
    with transaction.atomic():
        handle = _new_challenge(ChallengePurpose.REGISTER, user, options.challenge)
        audit.record("mfa.passkey.begin", actor=user)
    return handle, json.loads(options_to_json(options))


def finish_registration(
    user: User, *, challenge_id: str, credential: dict[str, Any], name: str = ""
) -> tuple[Passkey, list[str]]:
    """Verify the browser's answer and store the passkey.

    Returns it with new recovery codes if the user holds none (else an empty list).
    """
    try:
        challenge = _take_challenge(challenge_id, ChallengePurpose.REGISTER, user)
    except ChallengeExpired:
        audit.record("mfa.passkey.register", actor=user, outcome=Outcome.FAILURE)
        raise
    try:
        parsed = parse_registration_credential_json(credential)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGIN,
            require_user_verification=True,
        )
    except Exception as exc:  # untrusted bytes in a third-party parser: any failure is a "no"
        audit.record("mfa.passkey.register", actor=user, outcome=Outcome.FAILURE)
        raise _registration_rejected() from exc
    transports = [t.value for t in parsed.response.transports or []]
    try:
        with transaction.atomic():
            passkey = Passkey.objects.create(
                user=user,
                credential_id=bytes_to_base64url(verified.credential_id),
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                transports=transports,
                name=name.strip()[:NAME_MAX_LENGTH],
                created_at=clock.now(),
            )
            codes = mfa.finish_first_factor(user)
            audit.record("mfa.passkey.register", actor=user, subject=_subject(passkey))
    except IntegrityError as exc:  # this credential is registered already
        audit.record("mfa.passkey.register", actor=user, outcome=Outcome.FAILURE)
        raise _registration_rejected() from exc
    return passkey, codes


def _subject(passkey: Passkey) -> Subject:
    return Subject(object_type="passkey", object_id=str(passkey.pk))


# --- Sign-in ----------------------------------------------------------------------------


def begin_authentication() -> tuple[str, dict[str, Any]]:
    """(challenge_id, PublicKeyCredentialRequestOptions as JSON) for a password-less sign-in.

    No account is named: the browser offers the passkeys it holds for this site.
    """
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        challenge=secrets.token_bytes(32),
        timeout=_timeout_ms(),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    handle = _new_challenge(ChallengePurpose.AUTHENTICATE, None, options.challenge)
    return handle, json.loads(options_to_json(options))


def verify_authentication(*, challenge_id: str, credential: dict[str, Any]) -> User:
    """The active user whose passkey signed this challenge; raises NotAuthenticated
    (after an audit entry) otherwise. Advances the passkey's signature counter."""
    try:
        challenge = _take_challenge(challenge_id, ChallengePurpose.AUTHENTICATE, None)
    except ChallengeExpired:
        audit.record("auth.passkey", actor=None, outcome=Outcome.FAILURE)
        raise
    passkey: Passkey | None = None
    try:
        parsed = parse_authentication_credential_json(credential)
        passkey = (
            Passkey.objects.select_related("user")
            .filter(credential_id=bytes_to_base64url(parsed.raw_id))
            .first()
        )
        if passkey is None or not passkey.user.is_active:
            raise ValueError("unknown credential")  # one "no" for every cause
        handle = parsed.response.user_handle
        if handle is not None and handle != user_handle(passkey.user):
            raise ValueError("credential of another user")
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGIN,
            credential_public_key=bytes(passkey.public_key),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
        # Compare-and-set on the counter: two sign-ins with one assertion, one wins.
        advanced = Passkey.objects.filter(pk=passkey.pk, sign_count=passkey.sign_count).update(
            sign_count=verified.new_sign_count, last_used_at=clock.now()
        )
        if advanced != 1:
            raise ValueError("signature counter moved")
    except Exception as exc:  # untrusted bytes in a third-party parser: any failure is a "no"
        actor = passkey.user if passkey is not None else None
        audit.record(
            "auth.passkey",
            actor=actor,
            subject=_subject(passkey) if passkey is not None else Subject(),
            outcome=Outcome.FAILURE,
        )
        raise _sign_in_rejected() from exc
    return passkey.user


def sign_in_session(*, challenge_id: str, credential: dict[str, Any]) -> User:
    """Whoever proves a registered passkey, for a browser session: the same checks and
    audit entry ("auth.passkey") as a token sign-in, but the caller starts a session."""
    # services imports this module; its role helper is needed only here.
    from rdv.accounts.services import audit_role  # noqa: PLC0415

    user = verify_authentication(challenge_id=challenge_id, credential=credential)
    audit.record("auth.passkey", actor=user, role=audit_role(user))
    return user


# --- Managing one's passkeys ------------------------------------------------------------


def passkeys_of(user: User) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return list(Passkey.objects.filter(user=user).order_by("created_at", "pk"))


def remove_passkey(user: User, *, passkey_id: int) -> None:
    """Remove one of `user`'s passkeys; someone else's answers "not found", like a missing one.

    Clinic staff cannot remove their last second factor: they could no longer sign in
    (a lost device is replaced through an administrator's enrolment code instead).
    """
    with transaction.atomic():
        # Every passkey of the user, locked in key order: two removals cannot both
        # believe that another factor remains.
        mine = list(Passkey.objects.select_for_update().filter(user=user).order_by("pk"))
        passkey = next((p for p in mine if p.pk == passkey_id), None)
        if passkey is None:
            raise NotFound(_("This passkey does not exist."), code="passkey_not_found")
        others = len(mine) > 1 or TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        if is_staff_member(user) and not others:
            raise Conflict(
                _(
                    "Clinic staff must keep a second factor. Add another passkey or an "
                    "authenticator app before removing this one."
                ),
                code="last_second_factor",
            )
        subject = _subject(passkey)
        passkey.delete()
        audit.record("mfa.passkey.remove", actor=user, subject=subject)
