"""Password reset by email: a single-use, expiring link, then a new password.

Asking for a link answers the same whether or not an account has the address (the caller
shows one page for both), and mails only an active account. The link carries the
account's id and a token from Django's PasswordResetTokenGenerator, which hashes the
current password hash and last sign-in: it stops working as soon as the password changes
(so it works once) or after PASSWORD_RESET_TIMEOUT seconds, on the project's clock.

Setting a new password ends every session (Django checks each session against a hash of
the password) and revokes every API token. Second factors stay as they are: staff still
need theirs at the next sign-in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import exceptions as django_exceptions
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext_lazy as _

from rdv.accounts import lockout, tokens
from rdv.accounts.models import User, normalise_email
from rdv.accounts.queries import requires_second_factor
from rdv.audit import services as audit
from rdv.audit.models import Outcome
from rdv.audit.services import Subject
from rdv.core import clock
from rdv.core.errors import DomainError, ValidationError
from rdv.notifications import account_mail
from rdv.notifications.models import Kind


class ResetLinkInvalid(DomainError):
    """Expired, already used, or altered: the same answer for each, and for no account."""

    status = 400
    code = "reset_link_invalid"
    default_message = _(
        "This password reset link has expired or was already used. Ask for a new one."
    )


class _ResetTokens(PasswordResetTokenGenerator):
    key_salt = "rdv.accounts.password_reset"

    def _now(self) -> datetime:
        # The project's one clock (frozen in tests); naive UTC, as the base class counts.
        return clock.now().replace(tzinfo=None)


_tokens = _ResetTokens()


def link_minutes() -> int:
    return int(settings.PASSWORD_RESET_TIMEOUT) // 60


def request_password_reset(*, email: str) -> None:
    """Queue a reset link if an active account has `email`; else nothing.

    Both cases leave one audit entry and return the same way, so a caller cannot tell
    them apart.
    """
    user = User.objects.filter(email=normalise_email(email), is_active=True).first()
    if user is None:
        audit.record("auth.password_reset.request", actor=None, outcome=Outcome.FAILURE)
        return
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = _tokens.make_token(user)
    with transaction.atomic():
        audit.record("auth.password_reset.request", actor=user, subject=_subject(user))
        _mail_link(user, uidb64, token)


def check_reset_link(*, uidb64: str, token: str) -> User:
    """The account a live link belongs to; raises ResetLinkInvalid otherwise.

    Reading the link uses nothing up: mail scanners open links before people do.
    """
    user = _user_for_link(uidb64, token)
    if user is None:
        raise ResetLinkInvalid()
    return user


def reset_password(*, uidb64: str, token: str, new_password: str) -> User:
    """Set the new password of the link's account, if the link is live and the password
    passes the password rules (else ValidationError on `new_password`, link unused).

    Ends every session and API token of the account, mails a notice, and clears the
    sign-in lockout of an account with no second factor: for one that has a factor, the
    lockout also limits guesses at that factor, so a fresh link must not reset it.
    """
    user = _user_for_link(uidb64, token)
    if user is None:
        audit.record("auth.password_reset", actor=None, outcome=Outcome.FAILURE)
        raise ResetLinkInvalid()
    _check_password(new_password, user)
    with transaction.atomic():
        # Of two requests racing with one link, the second finds the password changed.
        locked = User.objects.select_for_update().get(pk=user.pk)
        if not locked.is_active or not _tokens.check_token(locked, token):
            raise ResetLinkInvalid()
        locked.set_password(new_password)
        locked.save(update_fields=["password"])
        tokens.revoke_all(locked)
        audit.record("auth.password_reset", actor=locked, subject=_subject(locked))
        _mail_changed(locked)
    if not requires_second_factor(locked):
        lockout.clear_attempts(locked.email)
    return locked


def _user_for_link(uidb64: str, token: str) -> User | None:
    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError):
        return None
    user = User.objects.filter(pk=pk, is_active=True).first()
    if user is None or not _tokens.check_token(user, token):
        return None
    return user


def _check_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user)
    except django_exceptions.ValidationError as exc:
        raise ValidationError(
            " ".join(exc.messages), field="new_password", code="weak_password"
        ) from exc


def _subject(user: User) -> Subject:
    return Subject(object_type="user", object_id=str(user.pk))


def _mail_link(user: User, uidb64: str, token: str) -> None:
    with translation.override(user.preferred_language):
        subject = str(_("Reset your RDV Santé password"))
        body = render_to_string(
            "accounts/password_reset_email.txt",
            {
                "user": user,
                "site_url": settings.SITE_URL,
                "uidb64": uidb64,
                "token": token,
                "minutes": link_minutes(),
            },
        )
    expires_at = clock.now() + timedelta(seconds=int(settings.PASSWORD_RESET_TIMEOUT))
    account_mail.queue(
        user, kind=Kind.RESET_LINK, subject=subject, text=body, expires_at=expires_at
    )


def _mail_changed(user: User) -> None:
    with translation.override(user.preferred_language):
        subject = str(_("Your RDV Santé password was changed"))
        body = render_to_string(
            "accounts/password_changed_email.txt",
            {"user": user, "site_url": settings.SITE_URL},
        )
    account_mail.queue(user, kind=Kind.PASSWORD_CHANGED, subject=subject, text=body)
