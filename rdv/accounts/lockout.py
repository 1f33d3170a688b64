"""Lockout of sign-in attempts per email, with a growing delay.

After `THRESHOLD` consecutive failures for an email (whether an account has it or not),
further attempts are refused for 1 minute, then 2, 4, … up to 1 hour, until one succeeds.
The counters live in the database, so every app server sees the same ones.

An attempt is counted when it *starts* (`reserve_attempt`), under a row lock, and
forgotten when it succeeds (`clear_attempts`). Counting first means that parallel guesses
cannot slip past the threshold while the password hasher runs.
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.db import transaction
from django.utils.crypto import salted_hmac
from django.utils.translation import ngettext_lazy

from rdv.accounts.models import SignInThrottle, normalise_email
from rdv.core import clock
from rdv.core.errors import DomainError

THRESHOLD = 5
FIRST_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=1)


class TooManyAttempts(DomainError):
    """Answered with 429 and a Retry-After of `retry_after` seconds."""

    status = 429
    code = "too_many_attempts"

    def __init__(self, *, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = max(1, math.ceil(retry_after / 60))
        super().__init__(
            ngettext_lazy(
                "Too many unsuccessful attempts. Try again in %(minutes)d minute.",
                "Too many unsuccessful attempts. Try again in %(minutes)d minutes.",
                "minutes",
            )
            % {"minutes": minutes}
        )


def throttle_key(email: str) -> str:
    """A keyed hash of the normalised email: stable, and no clear email in the table."""
    return salted_hmac(
        "rdv.accounts.lockout", normalise_email(email), algorithm="sha256"
    ).hexdigest()


def lock_delay(failures: int) -> timedelta:
    """How long the account stays locked after `failures` consecutive failures."""
    if failures < THRESHOLD:
        return timedelta(0)
    doublings = min(failures - THRESHOLD, 12)  # 2**12 minutes is well past the cap
    return min(FIRST_DELAY * (1 << doublings), MAX_DELAY)


def reserve_attempt(email: str) -> None:
    """Count one attempt for `email`, or raise TooManyAttempts while it is locked.

    The attempt counts as a failure until `clear_attempts` says otherwise; the attempt
    that reaches the threshold sets the lock for the next ones.
    """
    now = clock.now()
    with transaction.atomic():
        row, _ = SignInThrottle.objects.select_for_update().get_or_create(
            key=throttle_key(email), defaults={"last_failure_at": now}
        )
        if row.locked_until is not None and row.locked_until > now:
            raise TooManyAttempts(retry_after=math.ceil((row.locked_until - now).total_seconds()))
        row.failures += 1
        row.last_failure_at = now
        delay = lock_delay(row.failures)
        row.locked_until = now + delay if delay else None
        row.save(update_fields=["failures", "last_failure_at", "locked_until"])


def clear_attempts(email: str) -> None:
    """A successful sign-in: start counting from zero again."""
    SignInThrottle.objects.filter(key=throttle_key(email)).delete()
