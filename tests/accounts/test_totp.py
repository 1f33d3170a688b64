"""Authenticator apps and recovery codes, at the services.

The clock is frozen (conftest); codes are computed for the frozen time, as the server does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts import mfa
from rdv.accounts.models import RecoveryCode
from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.core.errors import Conflict, PermissionDenied, ValidationError
from tests.accounts.helpers import enrol, totp_code
from tests.conftest import Cast
from tests.factories import UserFactory


def test_enrolment_gives_an_unconfirmed_device_a_provisioning_uri_and_a_qr_code(
    cast: Cast,
) -> None:
    device, uri, svg = mfa.start_totp_enrolment(cast.sophie)

    assert not device.confirmed
    parsed = urlparse(uri)
    assert (parsed.scheme, parsed.netloc) == ("otpauth", "totp")
    assert "sophie%40example.test" in parsed.path
    query = parse_qs(parsed.query)
    assert query["issuer"] == ["RDV Santé"]
    assert query["digits"] == ["6"]
    assert query["period"] == ["30"]
    assert len(query["secret"][0]) == 32  # 20 random bytes in base32
    assert svg.startswith("<svg")
    assert svg.rstrip().endswith("</svg>")


def test_a_confirmed_device_needs_a_code_from_the_app(cast: Cast) -> None:
    device, _, _ = mfa.start_totp_enrolment(cast.sophie)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"

    with pytest.raises(ValidationError) as refused:
        mfa.confirm_totp(cast.sophie, wrong)
    assert refused.value.code == "bad_second_factor"
    device.refresh_from_db()
    assert not device.confirmed

    codes = mfa.confirm_totp(cast.sophie, totp_code(device))
    device.refresh_from_db()
    assert device.confirmed
    assert len(codes) == 10
    assert len(set(codes)) == 10


def test_confirming_without_an_enrolment_in_progress_is_a_conflict(cast: Cast) -> None:
    with pytest.raises(Conflict):
        mfa.confirm_totp(cast.sophie, "123456")


def test_starting_again_replaces_the_unfinished_enrolment(cast: Cast) -> None:
    first, _, _ = mfa.start_totp_enrolment(cast.sophie)
    second, _, _ = mfa.start_totp_enrolment(cast.sophie)
    assert list(TOTPDevice.objects.filter(user=cast.sophie).values_list("pk", flat=True)) == [
        second.pk
    ]
    assert first.pk != second.pk


def test_codes_one_step_early_or_late_are_accepted_two_steps_are_not(cast: Cast) -> None:
    device = enrol(cast.sophie)
    assert not mfa.verify_second_factor(cast.sophie, totp_code(device, steps=-2))
    assert not mfa.verify_second_factor(cast.sophie, totp_code(device, steps=2))
    assert mfa.verify_second_factor(cast.sophie, totp_code(device, steps=-1))
    assert mfa.verify_second_factor(cast.sophie, totp_code(device, steps=1))


def test_a_code_is_refused_the_second_time_and_so_are_older_ones(cast: Cast) -> None:
    device = enrol(cast.sophie)
    code = totp_code(device)
    assert mfa.verify_second_factor(cast.sophie, code)
    assert not mfa.verify_second_factor(cast.sophie, code)
    assert not mfa.verify_second_factor(cast.sophie, totp_code(device, steps=-1))
    # 30 seconds later the next code works.
    with clock.frozen_now(clock.now() + timedelta(seconds=30)):
        assert mfa.verify_second_factor(cast.sophie, totp_code(device))


def test_the_project_clock_decides_which_code_is_current(cast: Cast) -> None:
    device = enrol(cast.sophie)
    at_eight = totp_code(device)
    with clock.frozen_now(clock.now() + timedelta(minutes=5)):
        assert not mfa.verify_second_factor(cast.sophie, at_eight)
        assert mfa.verify_second_factor(cast.sophie, totp_code(device))


def test_someone_elses_code_does_not_work(cast: Cast) -> None:
    enrol(cast.sophie)
    marcs = enrol(cast.marc)
    assert not mfa.verify_second_factor(cast.sophie, totp_code(marcs))


def test_recovery_codes_are_stored_hashed_and_work_once(cast: Cast) -> None:
    enrol(cast.sophie)
    codes = mfa.issue_recovery_codes(cast.sophie)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT salt, digest FROM accounts_recoverycode WHERE user_id = %s",
            [cast.sophie.pk],
        )
        rows = cursor.fetchall()
    assert len(rows) == 10
    stored = " ".join(f"{salt} {digest}" for salt, digest in rows)
    for code in codes:
        assert code not in stored
        assert code.replace("-", "") not in stored
    assert len({salt for salt, _ in rows}) == 10  # one salt per code

    assert mfa.verify_second_factor(cast.sophie, codes[3])
    assert not mfa.verify_second_factor(cast.sophie, codes[3])
    # Typed by hand: upper case, without the dash, with spaces around.
    assert mfa.verify_second_factor(cast.sophie, f"  {codes[4].replace('-', '').upper()} ")
    assert RecoveryCode.objects.filter(user=cast.sophie, used_at__isnull=False).count() == 2


def test_new_recovery_codes_replace_the_old_ones(cast: Cast) -> None:
    enrol(cast.sophie)
    old = mfa.issue_recovery_codes(cast.sophie)
    new = mfa.issue_recovery_codes(cast.sophie)
    assert not mfa.verify_second_factor(cast.sophie, old[0])
    assert mfa.verify_second_factor(cast.sophie, new[0])


def test_regenerating_recovery_codes_needs_a_current_second_factor(cast: Cast) -> None:
    device = enrol(cast.sophie)
    with pytest.raises(PermissionDenied) as missing:
        mfa.regenerate_recovery_codes(cast.sophie, otp=None)
    assert missing.value.code == "second_factor_required"
    with pytest.raises(PermissionDenied) as wrong:
        mfa.regenerate_recovery_codes(cast.sophie, otp="000000")
    assert wrong.value.code == "bad_second_factor"
    assert len(mfa.regenerate_recovery_codes(cast.sophie, otp=totp_code(device))) == 10


def test_adding_an_authenticator_when_one_exists_needs_a_code_from_it(cast: Cast) -> None:
    device = enrol(cast.sophie)
    mfa.issue_recovery_codes(cast.sophie)
    with pytest.raises(PermissionDenied):
        mfa.start_totp_enrolment(cast.sophie)
    second, _, _ = mfa.start_totp_enrolment(cast.sophie, otp=totp_code(device))
    assert mfa.confirm_totp(cast.sophie, totp_code(second)) == []  # codes already issued


def test_an_enrolment_code_resets_every_factor_and_token(cast: Cast) -> None:
    enrol(cast.sophie)
    mfa.issue_recovery_codes(cast.sophie)
    code = mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)

    assert not TOTPDevice.objects.filter(user=cast.sophie).exists()
    assert not RecoveryCode.objects.filter(user=cast.sophie).exists()
    assert mfa.use_enrolment_code(cast.sophie, code)
    assert not mfa.use_enrolment_code(cast.sophie, code)


def test_an_enrolment_code_expires(cast: Cast) -> None:
    code = mfa.issue_enrolment_code(user=cast.sophie, issued_by=None)
    with clock.frozen_now(clock.now() + timedelta(hours=73)):
        assert not mfa.use_enrolment_code(cast.sophie, code)


def test_setting_up_factors_is_audited(cast: Cast) -> None:
    device, _, _ = mfa.start_totp_enrolment(cast.sophie)
    mfa.confirm_totp(cast.sophie, totp_code(device))
    actions = list(
        AuditEntry.objects.filter(actor_id=cast.sophie.pk)
        .order_by("id")
        .values_list("action", "outcome")
    )
    assert actions == [
        ("mfa.totp.begin", "success"),
        ("mfa.recovery_codes.issue", "success"),
        ("mfa.totp.confirm", "success"),
    ]


def race(attempt: Callable[[], bool], times: int = 8) -> list[bool]:
    """Run `attempt` in `times` threads released at once, each with its own connection."""
    barrier = threading.Barrier(times)
    results: list[bool] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            ok = attempt()
        finally:
            connection.close()
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(results)


@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_one_recovery_code_one_wins() -> None:
    user = UserFactory.create()
    enrol(user)
    code = mfa.issue_recovery_codes(user)[0]
    assert race(lambda: mfa.verify_second_factor(user, code)) == [False] * 7 + [True]


@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_with_one_totp_code_one_wins() -> None:
    user = UserFactory.create()
    code = totp_code(enrol(user))
    assert race(lambda: mfa.verify_second_factor(user, code)) == [False] * 7 + [True]
