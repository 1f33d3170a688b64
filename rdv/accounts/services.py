"""Sign-in and API tokens.

Every sign-in attempt (password, enrolment code or passkey) appends exactly one audit
entry: `success`, `failure` (a wrong password or code) or `denied` (locked out, or a
second factor missing).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from rdv.accounts import lockout, mfa, passkeys, tokens
from rdv.accounts.models import TokenScope, User, normalise_email
from rdv.accounts.queries import has_second_factor, requires_second_factor
from rdv.audit import services as audit
from rdv.audit.models import Outcome
from rdv.core.errors import NotAuthenticated, NotFound, PermissionDenied, ValidationError
from rdv.notifications import services as notifications
from rdv.patients.queries import own_patient
from rdv.scheduling.services import LINK_ROLE


def audit_role(user: User) -> str:
    """The role an audit entry names for `user`'s own sign-in."""
    if user.is_staff:
        return "platform_admin"
    role = user.memberships.order_by("pk").values_list("role", flat=True).first()
    return role or "patient"


def _start_attempt(action: str, email: str) -> None:
    try:
        lockout.reserve_attempt(email)
    except lockout.TooManyAttempts:
        audit.record(action, actor=None, outcome=Outcome.DENIED)
        raise


def _check_password(action: str, email: str, password: str) -> User:
    # For an unknown email, ModelBackend still runs the password hasher once, so both
    # "no" answers take about as long.
    user = authenticate(username=normalise_email(email), password=password)
    if not isinstance(user, User) or not user.is_active:
        audit.record(action, actor=None, outcome=Outcome.FAILURE)
        raise NotAuthenticated(_("Incorrect email or password."), code="bad_credentials")
    return user


def _check_second_factor(action: str, user: User, otp: str | None) -> None:
    role = audit_role(user)
    if not has_second_factor(user):
        audit.record(action, actor=user, role=role, outcome=Outcome.DENIED)
        raise PermissionDenied(
            _(
                "Clinic staff must set up a second factor before signing in. "
                "Ask your clinic administrator for an enrolment code."
            ),
            code="second_factor_enrolment_required",
        )
    if not otp:
        audit.record(action, actor=user, role=role, outcome=Outcome.DENIED)
        raise NotAuthenticated(
            _("Enter the code from your authenticator app, or a recovery code."),
            code="second_factor_required",
        )
    if not mfa.verify_second_factor(user, otp):
        audit.record(action, actor=user, role=role, outcome=Outcome.FAILURE)
        raise NotAuthenticated(
            _("This code is not valid. Check your authenticator app and try again."),
            code="bad_second_factor",
        )


def _full_token(action: str, user: User) -> str:
    with transaction.atomic():
        token = tokens.create_token(
            user=user,
            scope=TokenScope.API,
            lifetime=timedelta(days=settings.API_TOKEN_TTL_DAYS),
        )
        audit.record(action, actor=user, role=audit_role(user))
    return token


def issue_api_token(*, email: str, password: str, otp: str | None = None) -> str:
    """Check the credentials and return a new bearer token (shown once, stored hashed).

    Staff, and anyone who has set up a second factor, must also give `otp`: a code from
    their authenticator app or a recovery code. Staff with no second factor get no token.
    Unknown email and wrong password give the same answer, so the endpoint does not
    reveal which accounts exist; after 5 failures in a row for an email, attempts are
    refused for a growing time (rdv.accounts.lockout).
    """
    _start_attempt("auth.token", email)
    user = _check_password("auth.token", email, password)
    if requires_second_factor(user):
        _check_second_factor("auth.token", user, otp)
    lockout.clear_attempts(email)
    return _full_token("auth.token", user)


def sign_in(*, email: str, password: str, otp: str | None = None) -> User:
    """Check the credentials for a browser session: the same rules, lockout and audit
    entry as `issue_api_token`, but the caller starts a session instead of a token."""
    _start_attempt("auth.session", email)
    user = _check_password("auth.session", email, password)
    if requires_second_factor(user):
        _check_second_factor("auth.session", user, otp)
    lockout.clear_attempts(email)
    audit.record("auth.session", actor=user, role=audit_role(user))
    return user


def confirm_password(*, user: User, password: str) -> None:
    """Ask for the password again before a sensitive change (adding a passkey): a session
    left open, or stolen, must not be enough to plant a new way in. Counts against the
    same lockout as signing in."""
    _start_attempt("auth.confirm_password", user.email)
    _check_password("auth.confirm_password", user.email, password)
    lockout.clear_attempts(user.email)


def issue_enrolment_token(*, email: str, password: str, enrolment_code: str) -> str:
    """A token good only for setting up a second factor, for MFA_ENROLMENT_TOKEN_MINUTES.

    It takes the password *and* the single-use code an administrator handed over
    (mfa.issue_enrolment_code): a stolen password alone cannot enrol an attacker's phone.
    """
    action = "auth.enrolment_token"
    _start_attempt(action, email)
    user = _check_password(action, email, password)
    if not mfa.use_enrolment_code(user, enrolment_code):
        audit.record(action, actor=user, role=audit_role(user), outcome=Outcome.FAILURE)
        raise NotAuthenticated(
            _("This enrolment code is not valid or has expired."), code="bad_enrolment_code"
        )
    lockout.clear_attempts(email)
    with transaction.atomic():
        token = tokens.create_token(
            user=user,
            scope=TokenScope.MFA_ENROLMENT,
            lifetime=timedelta(minutes=settings.MFA_ENROLMENT_TOKEN_MINUTES),
        )
        audit.record(action, actor=user, role=audit_role(user))
    return token


def sign_in_with_passkey(*, challenge_id: str, credential: dict[str, Any]) -> str:
    """A full token for whoever proves a registered passkey (with user verification)."""
    user = passkeys.verify_authentication(challenge_id=challenge_id, credential=credential)
    return _full_token("auth.passkey", user)


def user_for_token(token: str) -> User | None:
    """The active user a live full token belongs to, or None."""
    return tokens.user_for(token, scopes=[TokenScope.API])


def user_for_enrolment(token: str) -> User | None:
    """As user_for_token, also accepting an enrolment-only token (MFA endpoints only)."""
    return tokens.user_for(token, scopes=[TokenScope.API, TokenScope.MFA_ENROLMENT])


def set_preferred_language(*, user: User, language: str) -> None:
    """The language of the pages, emails and text messages this person receives."""
    if language in User.Language.values and user.preferred_language != language:
        user.preferred_language = language
        user.save(update_fields=["preferred_language"])


def update_preferences(
    *,
    user: User,
    language: str,
    notify_by_email: bool,
    notify_by_sms: bool,
    reminders: bool,
) -> User:
    """The language and the ways this person is told about their appointments, together.

    At least one channel stays on (the database refuses none, too); text messages need a
    phone number on the person's own patient file. The account row is locked before that
    file is read, the order rdv.patients.services follows when a phone is removed, so the
    two can never leave text messages on with no number. Audited as `account.preferences`.
    """
    if language not in User.Language.values:
        raise ValidationError(
            _("Choose French or English."), field="preferred_language", code="language"
        )
    if not (notify_by_email or notify_by_sms):
        raise ValidationError(
            _("Choose at least one way to reach you: email or text message."),
            field="notify_by_email",
            code="no_channel",
        )
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        own = own_patient(locked)
        if notify_by_sms and (own is None or not own.phone):
            raise ValidationError(
                _("Add a phone number to your profile to receive text messages."),
                field="notify_by_sms",
                code="sms_needs_phone",
            )
        locked.preferred_language = language
        locked.notify_by_email = notify_by_email
        locked.notify_by_sms = notify_by_sms
        locked.reminders = reminders
        locked.save(
            update_fields=["preferred_language", "notify_by_email", "notify_by_sms", "reminders"]
        )
        if not reminders:
            notifications.withdraw_reminders_to(locked)
        audit.record(
            "account.preferences",
            actor=locked,
            role=audit_role(locked),
            subject=audit.Subject(object_type="account", object_id=str(locked.pk)),
        )
    return locked


def stop_reminders(*, user_id: int) -> bool:
    """Reminders off for this account, on every channel, from the unsubscribe link in a
    reminder email (RFC 8058): no session, the signed link is the authority.

    Its waiting reminders are withdrawn in the same transaction (pending ones, and ones a
    worker claimed but has not picked up yet: it skips them), so none is sent afterwards.
    Confirmations, cancellations and moves still come: they are not "list" mail. Audited
    as `account.preferences` by the account holder through a link. Idempotent: True when
    something changed; a repeat writes nothing. NotFound for a closed account.
    """
    with transaction.atomic():
        # The account row first, as update_preferences does (the same lock order).
        locked = User.objects.select_for_update().filter(pk=user_id, is_active=True).first()
        if locked is None:
            raise NotFound(_("This link does not work (any more)."), code="link_invalid")
        withdrawn = notifications.withdraw_reminders_to(locked)
        if not locked.reminders and not withdrawn:
            return False
        locked.reminders = False
        locked.save(update_fields=["reminders"])
        audit.record(
            "account.preferences",
            actor=locked,
            role=LINK_ROLE,
            subject=audit.Subject(object_type="account", object_id=str(locked.pk)),
        )
    return True
