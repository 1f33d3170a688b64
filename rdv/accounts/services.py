"""Sign-in and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import ApiToken, User, normalise_email
from rdv.audit import services as audit
from rdv.audit.models import Outcome
from rdv.core import clock
from rdv.core.errors import NotAuthenticated

# A public prefix that makes leaked tokens easy to find in logs and code.
TOKEN_PREFIX = "rdv_"  # noqa: S105  # nosec B105


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_api_token(*, email: str, password: str) -> str:
    """Check the credentials and return a new bearer token (shown once, stored hashed).

    Unknown email and wrong password give the same answer, so the endpoint does not
    reveal which accounts exist.
    """
    user = authenticate(username=normalise_email(email), password=password)
    if user is None or not user.is_active:
        audit.record("auth.token", actor=None, outcome=Outcome.FAILURE)
        raise NotAuthenticated(_("Incorrect email or password."), code="bad_credentials")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued = clock.now()
    with transaction.atomic():
        ApiToken.objects.create(
            user=user,
            digest=_digest(token),
            created_at=issued,
            expires_at=issued + timedelta(days=settings.API_TOKEN_TTL_DAYS),
        )
        audit.record("auth.token", actor=user)
    return token


def user_for_token(token: str) -> User | None:
    """The active user a live token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = (
        ApiToken.objects.select_related("user")
        .filter(digest=_digest(token), revoked_at__isnull=True, expires_at__gt=clock.now())
        .first()
    )
    if found is None or not found.user.is_active:
        return None
    return found.user
