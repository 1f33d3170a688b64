"""Second factors: authenticator apps (TOTP), recovery codes, and enrolment codes.

TOTP follows RFC 6238 (30-second steps, 6 digits, one step of tolerance either side) on
django-otp's `TOTPDevice`, but codes are checked here rather than with
`TOTPDevice.verify_token`, for two reasons: the time comes from `rdv.core.clock` (the
project's one clock), and accepting a code is a compare-and-set on `last_t`
(`UPDATE … WHERE last_t < t`), so the same code can never be accepted twice, not even by
two requests racing each other (django-otp reads, compares and saves in three steps).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

import segno
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts import lockout, tokens
from rdv.accounts.models import EnrolmentCode, Passkey, RecoveryCode, User
from rdv.accounts.queries import has_second_factor
from rdv.audit import services as audit
from rdv.audit.models import Outcome
from rdv.audit.services import Subject
from rdv.core import clock
from rdv.core.errors import Conflict, PermissionDenied, ValidationError

RECOVERY_CODE_COUNT = 10
# No 0/o, 1/l/i: codes are copied by hand from paper.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_RECOVERY_LENGTH = 10  # ~50 bits
_ENROLMENT_LENGTH = 12  # ~60 bits
_TOTP_PATTERN = re.compile(r"[0-9]{6,8}")


# --- Authenticator apps -----------------------------------------------------------------


def start_totp_enrolment(user: User, *, otp: str | None = None) -> tuple[TOTPDevice, str, str]:
    """Create an unconfirmed authenticator for `user`: (device, otpauth URI, QR as SVG).

    Replaces any enrolment left unfinished. Someone who already has a second factor must
    present it (`otp`), so a stolen token alone cannot add an attacker's authenticator.
    """
    check_step_up(user, otp)
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="Authenticator", confirmed=False)
        audit.record("mfa.totp.begin", actor=user, subject=_device_subject(device))
    uri: str = device.config_url
    return device, uri, qr_svg(uri)


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an <svg> element to embed in a page."""
    return str(segno.make(uri, error="m").svg_inline(scale=4))


def confirm_totp(user: User, code: str) -> list[str]:
    """Confirm the pending authenticator with a first code from it.

    Returns new recovery codes (to show once) if the user holds none, else an empty list.
    Also ends any enrolment-only token: that token was good for this one enrolment.
    """
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        raise Conflict(
            _("No authenticator app is being set up. Please start again."),
            code="no_pending_enrolment",
        )
    step = _matching_step(device, code)
    if step is None:
        audit.record(
            "mfa.totp.confirm",
            actor=user,
            subject=_device_subject(device),
            outcome=Outcome.FAILURE,
        )
        raise ValidationError(
            _("This code does not match. Check the time on your phone and try again."),
            field="code",
            code="bad_second_factor",
        )
    with transaction.atomic():
        confirmed = TOTPDevice.objects.filter(
            pk=device.pk, confirmed=False, last_t__lt=step
        ).update(confirmed=True, last_t=step, last_used_at=clock.now())
        if confirmed != 1:
            raise Conflict(
                _("No authenticator app is being set up. Please start again."),
                code="no_pending_enrolment",
            )
        codes = finish_first_factor(user)
        audit.record("mfa.totp.confirm", actor=user, subject=_device_subject(device))
    return codes


def provision_confirmed_totp(user: User) -> TOTPDevice:
    """A ready-to-use authenticator, for seeding demo accounts (no confirmation step)."""
    with transaction.atomic():
        device: TOTPDevice = TOTPDevice.objects.create(user=user, name="Demo", confirmed=True)
        audit.record("mfa.totp.provision", actor=None, subject=_device_subject(device))
    return device


def _device_subject(device: TOTPDevice) -> Subject:
    return Subject(object_type="totp_device", object_id=str(device.pk))


def _matching_step(device: TOTPDevice, code: str) -> int | None:
    """The time step (within the tolerance) whose code is `code`, or None."""
    if not _TOTP_PATTERN.fullmatch(code) or len(code) != device.digits:
        return None
    now = int(clock.now().timestamp())
    current = (now - device.t0) // device.step
    found = None
    for step in range(current - device.tolerance, current + device.tolerance + 1):
        expected = f"{hotp(device.bin_key, step, digits=device.digits):0{device.digits}d}"
        if hmac.compare_digest(expected, code):
            found = step
    return found


def _use_totp(user: User, code: str) -> bool:
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        step = _matching_step(device, code)
        if step is None:
            continue
        # Compare-and-set: a code (or an older one) already used is refused.
        used: int = TOTPDevice.objects.filter(pk=device.pk, last_t__lt=step).update(
            last_t=step, last_used_at=clock.now()
        )
        return used == 1
    return False


# --- Recovery codes ---------------------------------------------------------------------


def _random_code(length: int) -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(length))
    half = length // 2
    return f"{raw[:half]}-{raw[half:]}"


def _normalise(code: str) -> str:
    return code.strip().lower().replace("-", "").replace(" ", "")


def _recovery_digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{_normalise(code)}".encode()).hexdigest()


def issue_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with 10 new ones, returned once, stored hashed."""
    codes = [_random_code(_RECOVERY_LENGTH) for _ in range(RECOVERY_CODE_COUNT)]
    now = clock.now()
    rows = []
    for code in codes:
        salt = secrets.token_hex(16)
        rows.append(
            RecoveryCode(user=user, salt=salt, digest=_recovery_digest(salt, code), created_at=now)
        )
    with transaction.atomic():
        RecoveryCode.objects.filter(user=user).delete()
        RecoveryCode.objects.bulk_create(rows)
        audit.record("mfa.recovery_codes.issue", actor=user)
    return codes


def regenerate_recovery_codes(user: User, *, otp: str | None) -> list[str]:
    """New recovery codes for someone who proves a second factor now."""
    if not has_second_factor(user):
        raise Conflict(
            _("Set up an authenticator app or a passkey first."), code="no_second_factor"
        )
    check_step_up(user, otp)
    return issue_recovery_codes(user)


def finish_first_factor(user: User) -> list[str]:
    """After a factor is confirmed: recovery codes if the user has none left, and the end
    of any enrolment-only token. Runs inside the caller's transaction."""
    tokens.revoke_enrolment_tokens(user)
    if RecoveryCode.objects.filter(user=user, used_at__isnull=True).exists():
        return []
    return issue_recovery_codes(user)


def _use_recovery_code(user: User, code: str) -> RecoveryCode | None:
    given = _normalise(code)
    if len(given) != _RECOVERY_LENGTH:
        return None
    for row in RecoveryCode.objects.filter(user=user, used_at__isnull=True):
        if hmac.compare_digest(row.digest, _recovery_digest(row.salt, given)):
            # Compare-and-set: of two requests racing with the same code, one wins.
            used = RecoveryCode.objects.filter(pk=row.pk, used_at__isnull=True).update(
                used_at=clock.now()
            )
            return row if used == 1 else None
    return None


# --- Checking a second factor -----------------------------------------------------------


def verify_second_factor(user: User, code: str) -> bool:
    """True if `code` is a current authenticator code or an unused recovery code.

    Either way the code is used up: an authenticator code is refused again (and so are
    older ones), a recovery code works once.
    """
    code = code.strip().replace(" ", "")
    if _TOTP_PATTERN.fullmatch(code):
        return _use_totp(user, code)
    return _use_recovery_code(user, code) is not None


def check_step_up(user: User, otp: str | None) -> None:
    """Someone with a second factor must present it to change their factors.

    Wrong codes count towards the sign-in lockout of the account's email.
    """
    if not has_second_factor(user):
        return
    if not otp:
        raise PermissionDenied(
            _("Enter the code from your authenticator app, or a recovery code."),
            code="second_factor_required",
        )
    try:
        lockout.reserve_attempt(user.email)
    except lockout.TooManyAttempts:
        audit.record("mfa.step_up", actor=user, outcome=Outcome.DENIED)
        raise
    if not verify_second_factor(user, otp):
        audit.record("mfa.step_up", actor=user, outcome=Outcome.FAILURE)
        raise PermissionDenied(
            _("This code is not valid. Check your authenticator app and try again."),
            code="bad_second_factor",
        )
    lockout.clear_attempts(user.email)


# --- Enrolment codes --------------------------------------------------------------------


def _enrolment_digest(code: str) -> str:
    return hashlib.sha256(_normalise(code).encode()).hexdigest()


def issue_enrolment_code(*, user: User, issued_by: User | None) -> str:
    """A single-use code that lets `user` set up a second factor, handed over out of band
    (in person, by phone, by letter). Expires after MFA_ENROLMENT_CODE_HOURS.

    It is also the "I lost my phone" path, so it resets: the user's authenticators,
    passkeys, recovery codes, earlier enrolment codes and live tokens are removed at once,
    and a lost or stolen device stops working. Every web session of `user` ends too
    (raising `session_epoch` changes their session hash, checked on each request), even one
    that proved a second factor; resetting oneself signs oneself out as well. The
    administrator's own sessions are untouched when they reset someone else.
    """
    code = _random_code(_ENROLMENT_LENGTH)
    now = clock.now()
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        Passkey.objects.filter(user=user).delete()
        RecoveryCode.objects.filter(user=user).delete()
        EnrolmentCode.objects.filter(user=user).delete()
        tokens.revoke_all(user)
        User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
        user.refresh_from_db(fields=["session_epoch"])
        EnrolmentCode.objects.create(
            user=user,
            digest=_enrolment_digest(code),
            issued_by=issued_by,
            created_at=now,
            expires_at=now + timedelta(hours=settings.MFA_ENROLMENT_CODE_HOURS),
        )
        audit.record(
            "mfa.enrolment_code.issue",
            actor=issued_by,
            subject=Subject(object_type="user", object_id=str(user.pk)),
        )
    return code


def use_enrolment_code(user: User, code: str) -> bool:
    """Spend `user`'s live enrolment code if `code` is it (compare-and-set)."""
    used = EnrolmentCode.objects.filter(
        user=user,
        digest=_enrolment_digest(code),
        used_at__isnull=True,
        expires_at__gt=clock.now(),
    ).update(used_at=clock.now())
    return used == 1
