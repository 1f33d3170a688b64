"""API bearer tokens: random, shown once, stored as SHA-256 digests, with a scope."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from rdv.accounts.models import ApiToken, TokenScope, User
from rdv.core import clock

# A public prefix that makes leaked tokens easy to find in logs and code.
TOKEN_PREFIX = "rdv_"  # noqa: S105  # nosec B105


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(*, user: User, scope: str, lifetime: timedelta) -> str:
    """Store a new token's digest and return the token (the caller owns the transaction)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    issued = clock.now()
    ApiToken.objects.create(
        user=user,
        digest=digest(token),
        created_at=issued,
        expires_at=issued + lifetime,
        scope=scope,
    )
    return token


def user_for(token: str, *, scopes: Iterable[str]) -> User | None:
    """The active user a live token of one of `scopes` belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = (
        ApiToken.objects.select_related("user")
        .filter(
            digest=digest(token),
            scope__in=list(scopes),
            revoked_at__isnull=True,
            expires_at__gt=clock.now(),
        )
        .first()
    )
    if found is None or not found.user.is_active:
        return None
    return found.user


def revoke_enrolment_tokens(user: User) -> None:
    """An enrolment-only token is good for one enrolment: end them once it is done."""
    ApiToken.objects.filter(
        user=user, scope=TokenScope.MFA_ENROLMENT, revoked_at__isnull=True
    ).update(revoked_at=clock.now())


def revoke_all(user: User) -> None:
    """Sign the user out everywhere."""
    ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=clock.now())
