"""Abuse limits: per-IP and per-account request rates, answered with 429 + Retry-After.

Counters live in Django's cache: Redis when REDIS_URL is set (shared by all app
servers), otherwise per process. If the cache is unreachable the limits fail open:
keeping patients able to book matters more than a counter, and sign-in keeps its own
database-backed lockout.
"""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_ratelimit.core import get_usage  # type: ignore[import-untyped]

from rdv.accounts.models import User
from rdv.core.errors import DomainError

logger = logging.getLogger(__name__)


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    default_message = _("Too many requests. Please wait a moment and try again.")

    def __init__(self, *, retry_after: int) -> None:
        super().__init__()
        self.retry_after = retry_after


def _hashed(value: str) -> str:
    # Counters are keyed by a digest: emails typed at the sign-in form never sit in the cache.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def enforce(request: HttpRequest, scope: str, *, account: str | None = None) -> None:
    """Count this request against the scope's limit for its IP and, if given, its account."""
    rate = settings.RATE_LIMITS.get(scope)
    if not rate:
        return
    keys = [("ip", "ip")]
    if account:
        digest = _hashed(account)
        keys.append(("account", lambda group, req: digest))  # type: ignore[arg-type]
    for name, key in keys:
        try:
            usage = get_usage(
                request, group=f"rdv.{scope}.{name}", key=key, rate=rate, increment=True
            )
        except Exception:  # the cache server is down or unreachable: fail open
            logger.warning("rate-limit cache unavailable; %s not limited", scope, exc_info=True)
            return
        if usage is not None and usage["should_limit"]:
            raise RateLimited(retry_after=max(1, int(usage["time_left"])))


def limit(request: HttpRequest, scope: str) -> None:
    """Limit a handler by IP, and by the signed-in account when there is one."""
    user = getattr(request, "auth", None)
    enforce(request, scope, account=f"user:{user.pk}" if isinstance(user, User) else None)
