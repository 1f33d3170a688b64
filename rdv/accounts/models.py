from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        user = self.model(email=normalise_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


def normalise_email(email: str) -> str:
    return email.strip().lower()


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: a patient, clinic staff, or a platform admin.

    The email is the login, stored lower-case and unique regardless of case.
    """

    class Language(models.TextChoices):
        FRENCH = "fr", "Français"
        ENGLISH = "en", "English"

    email = models.EmailField(_("email"), max_length=254, unique=True)
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    preferred_language = models.CharField(
        max_length=2, choices=Language.choices, default=Language.FRENCH
    )
    is_active = models.BooleanField(default=True)
    # How to reach this person about their appointments (rdv.accounts.services
    # .update_preferences): email, text messages to their own patient file's phone, or
    # both; and whether to send reminders before a visit.
    notify_by_email = models.BooleanField(default=True)
    notify_by_sms = models.BooleanField(default=False)
    reminders = models.BooleanField(default=True)
    # Set when the person typed the code mailed to this address.
    email_verified_at = models.DateTimeField(null=True, blank=True)
    is_staff = models.BooleanField(default=False, help_text="Platform admin (Django admin).")
    date_joined = models.DateTimeField(auto_now_add=True)
    # Raised by one (F() update) to end every web session of this person at once, whatever
    # the session backend: it is part of get_session_auth_hash, which Django checks on every
    # request. Raised by the "lost my phone" reset (rdv.accounts.mfa.issue_enrolment_code).
    session_epoch = models.PositiveIntegerField(default=0)

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            # A person can always be reached somehow (cancellations by the clinic).
            models.CheckConstraint(
                condition=Q(notify_by_email=True) | Q(notify_by_sms=True),
                name="user_notified_somehow",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    # Django stores get_session_auth_hash() in the session at sign-in and compares it on
    # every request (django.contrib.auth.get_user); a mismatch flushes the session. Mixing
    # session_epoch into it ends all of this person's sessions when the epoch is raised.
    # At epoch 0 the hash is exactly Django's default (an HMAC of the password field), so
    # the sessions open when this was deployed stay valid: only a reset signs anyone out.
    # The fallback hashes (SECRET_KEY_FALLBACKS) carry the epoch too, or a session signed
    # under an old secret would survive a reset.

    def get_session_auth_hash(self) -> str:
        return self._epoch_session_auth_hash(secret=None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for fallback_secret in settings.SECRET_KEY_FALLBACKS:
            yield self._epoch_session_auth_hash(secret=fallback_secret)

    def _epoch_session_auth_hash(self, secret: str | bytes | None) -> str:
        if not self.session_epoch:
            # Django's own formula (AbstractBaseUser._get_session_auth_hash, Django 5.2);
            # tests/accounts/test_session_epoch.py checks it still matches.
            salt = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
            value = self.password
        else:
            salt = "rdv.accounts.models.User.get_session_auth_hash"
            value = f"{self.password}:{self.session_epoch}"
        return salted_hmac(salt, value, secret=secret, algorithm="sha256").hexdigest()


class TokenScope(models.TextChoices):
    # A full API token, obtained with every factor the account requires.
    API = "api", _("API")
    # Good only for setting up a second factor (rdv.accounts.mfa), for 15 minutes.
    MFA_ENROLMENT = "mfa_enrolment", _("Second-factor enrolment")


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its SHA-256 digest is stored."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    scope = models.CharField(max_length=20, choices=TokenScope.choices, default=TokenScope.API)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(scope__in=TokenScope.values), name="api_token_scope_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"token {self.pk} of user {self.user_id}"


class RecoveryCode(models.Model):
    """A one-time recovery code. Only a salted SHA-256 digest is kept: the code itself is
    shown once. Codes carry about 50 random bits, so a fast hash is enough (a guess costs
    a sign-in attempt, and sign-in attempts are locked out)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="recovery_codes")
    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "used_at"], name="recovery_code_user_idx")]

    def __str__(self) -> str:
        return f"recovery code {self.pk} of user {self.user_id}"


class EnrolmentCode(models.Model):
    """A single-use code, handed to a staff member out of band by an administrator, that
    (with the password) buys a short enrolment-only token. Stored as a SHA-256 digest."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="enrolment_codes")
    digest = models.CharField(max_length=64, unique=True)
    issued_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"enrolment code {self.pk} of user {self.user_id}"


class Passkey(models.Model):
    """A WebAuthn credential (public key only) registered by a user."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="passkeys")
    # base64url of the raw credential id (at most 1023 bytes, so 1364 characters).
    credential_id = models.CharField(max_length=1400, unique=True)
    public_key = models.BinaryField()
    sign_count = models.PositiveBigIntegerField(default=0)
    transports = models.JSONField(default=list, blank=True)
    name = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"passkey {self.pk} of user {self.user_id}"


class ChallengePurpose(models.TextChoices):
    REGISTER = "register", _("Passkey registration")
    AUTHENTICATE = "authenticate", _("Passkey sign-in")


class WebAuthnChallenge(models.Model):
    """A WebAuthn challenge kept on the server between "begin" and "finish".

    The client only holds `handle`; the finish step deletes the row before verifying, so a
    challenge is good for one attempt. Rows older than `expires_at` are ignored and swept.
    """

    handle = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=20, choices=ChallengePurpose.choices)
    # Set for registration (the signed-in user); empty for a passkey sign-in.
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    challenge = models.BinaryField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(purpose__in=ChallengePurpose.values), name="webauthn_purpose_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} challenge {self.pk}"


class SignInThrottle(models.Model):
    """Consecutive failed sign-ins for one email, known account or not.

    `key` is an HMAC of the normalised email (keyed with a secret derived from SECRET_KEY),
    so emails that belong to nobody are never stored in clear.
    """

    key = models.CharField(max_length=64, unique=True)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()
    locked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sign-in throttle {self.pk}"


class EmailVerificationCode(models.Model):
    """A 6-digit code mailed at sign-up, typed on the next page (so a visitor never leaves
    the tab, or loses a held slot, to confirm their address). Only a salted digest is kept;
    a code lives 15 minutes and allows 5 wrong guesses."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_codes")
    salt = models.CharField(max_length=32)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    failed_attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"email code {self.pk} of user {self.user_id}"


class Consent(models.Model):
    """What a person agreed to, when, and which version (Law 25: consent is recorded)."""

    class Document(models.TextChoices):
        TERMS = "terms", _("Terms of use")
        PRIVACY = "privacy", _("Privacy policy")

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="consents")
    document = models.CharField(max_length=20, choices=Document.choices)
    version = models.CharField(max_length=20)
    language = models.CharField(max_length=2)
    accepted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "document", "version"], name="consent_once_per_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document} {self.version} by user {self.user_id}"
