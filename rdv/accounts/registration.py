"""Sign-up: a new account, its own patient file, recorded consent, a verified email.

Each public function is one transaction and audits what it did.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, timedelta

from django.contrib.auth import password_validation
from django.core import exceptions as django_exceptions
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import Consent, EmailVerificationCode, User, normalise_email
from rdv.audit import services as audit
from rdv.core import clock
from rdv.core.errors import Conflict, ValidationError
from rdv.notifications import account_mail
from rdv.notifications.models import Kind
from rdv.patients.models import Patient

# Bump when the terms or the privacy policy change; the pages show the same version.
TERMS_VERSION = "2026-11-01"
CODE_MINUTES = 15
CODE_MAX_FAILURES = 5


def _digest(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def _check_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except django_exceptions.ValidationError as exc:
        raise ValidationError(
            " ".join(exc.messages), field="password", code="weak_password"
        ) from exc


def sign_up(
    *,
    email: str,
    password: str,
    first_name: str,
    last_name: str,
    date_of_birth: date,
    language: str,
    accepted_terms_version: str,
) -> User:
    """Create the account and the holder's own patient file, record consent, mail a code.

    Refuses terms other than the current version (the page was stale), a weak password,
    a birth date in the future, and an email already in use.
    """
    if accepted_terms_version != TERMS_VERSION:
        raise ValidationError(
            _("The terms of use have changed. Please read and accept the current version."),
            field="accept_terms",
            code="stale_terms",
        )
    if date_of_birth > clock.local_today():
        raise ValidationError(
            _("The date of birth is in the future."), field="date_of_birth", code="future"
        )
    address = normalise_email(email)
    user = User(email=address, first_name=first_name.strip(), last_name=last_name.strip())
    user.preferred_language = language if language in User.Language.values else "fr"
    _check_password(password, user)
    user.set_password(password)
    now = clock.now()
    try:
        with transaction.atomic():
            user.save()
            Patient.objects.create(
                account=user,
                relationship=Patient.Relationship.SELF,
                first_name=user.first_name,
                last_name=user.last_name,
                date_of_birth=date_of_birth,
            )
            for document in Consent.Document.values:
                Consent.objects.create(
                    user=user,
                    document=document,
                    version=TERMS_VERSION,
                    language=user.preferred_language,
                    accepted_at=now,
                )
            audit.record("account.sign_up", actor=user, role="patient")
            _issue_code(user)
    except IntegrityError as exc:
        raise Conflict(
            _("An account already exists with this email. Sign in instead."),
            field="email",
            code="email_taken",
        ) from exc
    return user


def _issue_code(user: User) -> None:
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(16)
    now = clock.now()
    EmailVerificationCode.objects.filter(user=user, used_at__isnull=True).update(used_at=now)
    account_mail.withdraw(user, kind=Kind.EMAIL_CODE)  # the old code no longer works
    expires_at = now + timedelta(minutes=CODE_MINUTES)
    EmailVerificationCode.objects.create(
        user=user, salt=salt, digest=_digest(salt, code), created_at=now, expires_at=expires_at
    )
    with translation.override(user.preferred_language):
        subject = str(_("Your RDV Santé confirmation code: %(code)s") % {"code": code})
        body = render_to_string(
            "accounts/email_code.txt", {"user": user, "code": code, "minutes": CODE_MINUTES}
        )
    account_mail.queue(
        user, kind=Kind.EMAIL_CODE, subject=subject, text=body, expires_at=expires_at
    )


def resend_code(*, user: User) -> None:
    """Mail a fresh code (the previous one stops working)."""
    with transaction.atomic():
        _issue_code(user)


def verify_email(*, user: User, code: str) -> None:
    """Mark the email verified if `code` is the live one; count a wrong guess otherwise."""
    if user.email_verified_at is not None:
        return
    now = clock.now()
    with transaction.atomic():
        current = (
            EmailVerificationCode.objects.select_for_update()
            .filter(user=user, used_at__isnull=True, expires_at__gt=now)
            .order_by("-pk")
            .first()
        )
        if current is None or current.failed_attempts >= CODE_MAX_FAILURES:
            raise ValidationError(
                _("This code has expired. Ask for a new one."), field="code", code="code_expired"
            )
        if not hmac.compare_digest(current.digest, _digest(current.salt, code.strip())):
            current.failed_attempts += 1
            current.save(update_fields=["failed_attempts"])
            audit.record("account.verify_email", actor=user, role="patient", outcome="failure")
            # Raised after the block commits, so the counted failure is kept.
            wrong = ValidationError(
                _("This code is not the one we sent."), field="code", code="bad_code"
            )
        else:
            current.used_at = now
            current.save(update_fields=["used_at"])
            user.email_verified_at = now
            user.save(update_fields=["email_verified_at"])
            audit.record("account.verify_email", actor=user, role="patient")
            return
    raise wrong
