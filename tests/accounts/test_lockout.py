"""Five failed sign-ins in a row lock an email for 1 minute, then 2, 4, … up to an hour.

Known or unknown, an email is treated the same way; nothing says which accounts exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection

from rdv.accounts import lockout
from rdv.accounts.models import SignInThrottle
from rdv.audit.models import AuditEntry
from rdv.core import clock
from tests.accounts.helpers import enrol, totp_code
from tests.conftest import PASSWORD, Api, Cast

UNKNOWN = "nobody@example.test"


def sign_in(email: str, password: str = PASSWORD, language: str = "fr", **extra: Any) -> Any:
    return Api(language=language).post(
        "/auth/token", {"email": email, "password": password, **extra}
    )


def fail(email: str, times: int) -> list[int]:
    return [sign_in(email, password="wrong password").status_code for _ in range(times)]


def later(minutes: float) -> Any:
    return clock.frozen_now(clock.now() + timedelta(minutes=minutes))


@pytest.mark.parametrize(
    ("failures", "minutes"),
    [(1, 0), (4, 0), (5, 1), (6, 2), (7, 4), (8, 8), (10, 32), (11, 60), (50, 60), (10**6, 60)],
)
def test_the_delay_doubles_from_one_minute_up_to_an_hour(failures: int, minutes: int) -> None:
    assert lockout.lock_delay(failures) == timedelta(minutes=minutes)


def test_five_failures_lock_the_email_for_a_minute_even_with_the_right_password(
    cast: Cast,
) -> None:
    assert fail(cast.marie.email, 5) == [401] * 5
    locked = sign_in(cast.marie.email)
    assert locked.status_code == 429
    assert locked.json()["error"]["code"] == "too_many_attempts"
    assert lockout.TooManyAttempts(retry_after=60).retry_after == 60

    with later(0.5):
        assert sign_in(cast.marie.email).status_code == 429
    with later(1):
        assert sign_in(cast.marie.email).status_code == 200


def test_the_lock_grows_with_each_further_failure(cast: Cast) -> None:
    fail(cast.marie.email, 5)
    start: datetime = clock.now()
    expected_minutes = [2, 4, 8, 16, 32, 60, 60]
    elapsed = timedelta(minutes=1)
    for minutes in expected_minutes:
        with clock.frozen_now(start + elapsed):
            assert fail(cast.marie.email, 1) == [401]
            row = SignInThrottle.objects.get(key=lockout.throttle_key(cast.marie.email))
            assert row.locked_until == clock.now() + timedelta(minutes=minutes)
            with pytest.raises(lockout.TooManyAttempts) as refused:
                lockout.reserve_attempt(cast.marie.email)
            assert refused.value.retry_after == minutes * 60
        elapsed += timedelta(minutes=minutes)


def test_a_success_starts_the_count_again(cast: Cast) -> None:
    fail(cast.marie.email, 4)
    assert sign_in(cast.marie.email).status_code == 200
    assert not SignInThrottle.objects.exists()
    assert fail(cast.marie.email, 4) == [401] * 4
    assert sign_in(cast.marie.email).status_code == 200


def test_unknown_emails_are_locked_the_same_way_with_the_same_answers(cast: Cast) -> None:
    known = [sign_in(cast.marie.email, password="wrong password") for _ in range(6)]
    unknown = [sign_in(UNKNOWN, password="wrong password") for _ in range(6)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [401] * 5 + [429]
    assert [r.json() for r in known] == [r.json() for r in unknown]
    assert known[-1]["Retry-After"] == unknown[-1]["Retry-After"] == "60"


def test_emails_are_counted_regardless_of_case_and_spaces(cast: Cast) -> None:
    fail("  Marie@Example.TEST ", 5)
    assert sign_in(cast.marie.email).status_code == 429


def test_the_counters_hold_no_email_in_clear(cast: Cast) -> None:
    fail(UNKNOWN, 2)
    fail(cast.marie.email, 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_signinthrottle")
        dump = repr(cursor.fetchall())
    assert "example.test" not in dump
    assert "nobody" not in dump
    assert "marie" not in dump


def test_locking_one_email_leaves_the_others_alone(cast: Cast) -> None:
    fail(cast.marie.email, 5)
    assert sign_in(cast.paul.email).status_code == 200


def test_wrong_second_factor_codes_count_towards_the_lock(cast: Cast) -> None:
    device = enrol(cast.sophie)
    for _ in range(5):
        assert sign_in(cast.sophie.email, otp="000000").status_code == 401
    assert sign_in(cast.sophie.email, otp=totp_code(device)).status_code == 429


def test_failures_locks_and_success_are_audited_one_entry_per_attempt(cast: Cast) -> None:
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    fail(UNKNOWN, 5)
    sign_in(UNKNOWN)
    fail(cast.marie.email, 4)
    sign_in(cast.marie.email)
    entries = list(
        AuditEntry.objects.filter(id__gt=before)
        .order_by("id")
        .values_list("action", "actor_id", "outcome")
    )
    assert entries == (
        [("auth.token", None, "failure")] * 5
        + [("auth.token", None, "denied")]
        + [("auth.token", None, "failure")] * 4
        + [("auth.token", cast.marie.pk, "success")]
    )


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("fr", "Trop de tentatives infructueuses. Réessayez dans 1 minute."),
        ("en", "Too many unsuccessful attempts. Try again in 1 minute."),
    ],
)
def test_the_lock_is_explained_in_french_and_english(
    cast: Cast, language: str, message: str
) -> None:
    fail(cast.marie.email, 5)
    assert sign_in(cast.marie.email, language=language).json()["error"]["message"] == message


class CountingHasher(MD5PasswordHasher):
    calls = 0

    def encode(self, password: str, salt: str) -> str:
        CountingHasher.calls += 1
        return super().encode(password, salt)


def test_unknown_email_and_wrong_password_both_run_the_password_hasher(
    cast: Cast, settings: Any
) -> None:
    """Comparable timing, checked by what runs rather than by a stopwatch."""
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    cast.marie.set_password(PASSWORD)  # re-hash with the counting hasher
    cast.marie.save()

    CountingHasher.calls = 0
    assert sign_in(UNKNOWN, password="wrong password").status_code == 401
    unknown_calls = CountingHasher.calls
    CountingHasher.calls = 0
    assert sign_in(cast.marie.email, password="wrong password").status_code == 401
    known_calls = CountingHasher.calls

    assert unknown_calls == known_calls == 1
