"""POST /api/v1/auth/token with a second factor, and how staff set one up."""

from __future__ import annotations

import importlib
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from rdv.accounts import mfa
from rdv.accounts.models import ApiToken, TokenScope
from rdv.accounts.tokens import create_token
from rdv.audit.models import AuditEntry
from rdv.core import clock
from tests.accounts.helpers import enrol, totp_code
from tests.conftest import PASSWORD, Api, Cast


def sign_in(email: str, password: str = PASSWORD, language: str = "fr", **extra: Any) -> Any:
    return Api(language=language).post(
        "/auth/token", {"email": email, "password": password, **extra}
    )


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])


def test_a_patient_signs_in_with_a_password_alone(cast: Cast) -> None:
    response = sign_in(cast.marie.email)
    assert response.status_code == 200
    assert response.json()["token"].startswith("rdv_")


def test_staff_who_have_not_set_up_a_second_factor_get_no_token(cast: Cast) -> None:
    for staff in (cast.sophie, cast.marc, cast.karim):
        response = sign_in(staff.email)
        assert response.status_code == 403
        assert error_code(response) == "second_factor_enrolment_required"
    assert not ApiToken.objects.filter(user__in=[cast.sophie, cast.marc, cast.karim]).exists()


def test_staff_need_a_code_and_a_wrong_one_is_refused(cast: Cast) -> None:
    device = enrol(cast.sophie)

    missing = sign_in(cast.sophie.email)
    assert (missing.status_code, error_code(missing)) == (401, "second_factor_required")
    wrong = sign_in(cast.sophie.email, otp="000000")
    assert (wrong.status_code, error_code(wrong)) == (401, "bad_second_factor")
    right = sign_in(cast.sophie.email, otp=totp_code(device))
    assert right.status_code == 200
    replayed = sign_in(cast.sophie.email, otp=totp_code(device))
    assert (replayed.status_code, error_code(replayed)) == (401, "bad_second_factor")

    token = right.json()["token"]
    api = Api()
    api.headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    assert api.get("/availability", near="Laval").status_code == 200


def test_a_wrong_password_with_a_right_code_is_just_a_wrong_password(cast: Cast) -> None:
    device = enrol(cast.sophie)
    response = sign_in(cast.sophie.email, password="not the password", otp=totp_code(device))
    assert (response.status_code, error_code(response)) == (401, "bad_credentials")
    # The code was not spent on a failed password.
    assert sign_in(cast.sophie.email, otp=totp_code(device)).status_code == 200


def test_a_platform_admin_needs_a_second_factor_too(cast: Cast) -> None:
    cast.paul.is_staff = True
    cast.paul.save()
    assert error_code(sign_in(cast.paul.email)) == "second_factor_enrolment_required"
    device = enrol(cast.paul)
    assert sign_in(cast.paul.email, otp=totp_code(device)).status_code == 200


def test_a_recovery_code_signs_staff_in_once(cast: Cast) -> None:
    enrol(cast.sophie)
    codes = mfa.issue_recovery_codes(cast.sophie)
    assert sign_in(cast.sophie.email, otp=codes[0]).status_code == 200
    again = sign_in(cast.sophie.email, otp=codes[0])
    assert (again.status_code, error_code(again)) == (401, "bad_second_factor")


def test_a_patient_who_set_up_an_authenticator_must_use_it(cast: Cast) -> None:
    device = enrol(cast.marie)
    assert error_code(sign_in(cast.marie.email)) == "second_factor_required"
    assert sign_in(cast.marie.email, otp=totp_code(device)).status_code == 200


@pytest.mark.parametrize(
    ("language", "code", "message"),
    [
        ("fr", "second_factor_required", "Entrez le code de votre application"),
        ("en", "second_factor_required", "Enter the code from your authenticator app"),
        ("fr", "bad_second_factor", "Ce code n’est pas valide"),
        ("en", "bad_second_factor", "This code is not valid"),
        ("fr", "second_factor_enrolment_required", "deuxième facteur"),
        ("en", "second_factor_enrolment_required", "second factor"),
    ],
)
def test_second_factor_answers_speak_french_and_english(
    cast: Cast, language: str, code: str, message: str
) -> None:
    if code != "second_factor_enrolment_required":
        enrol(cast.sophie)
    otp = {"otp": "000000"} if code == "bad_second_factor" else {}
    response = sign_in(cast.sophie.email, language=language, **otp)
    assert error_code(response) == code
    assert message in response.json()["error"]["message"]


def test_each_sign_in_attempt_appends_one_audit_entry(cast: Cast) -> None:
    device = enrol(cast.sophie)
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    sign_in(cast.sophie.email, password="wrong password")
    sign_in(cast.sophie.email)
    sign_in(cast.sophie.email, otp="000000")
    sign_in(cast.sophie.email, otp=totp_code(device))
    entries = list(
        AuditEntry.objects.filter(id__gt=before)
        .order_by("id")
        .values_list("action", "actor_id", "actor_role", "outcome")
    )
    assert entries == [
        ("auth.token", None, "anonymous", "failure"),
        ("auth.token", cast.sophie.pk, "receptionist", "denied"),
        ("auth.token", cast.sophie.pk, "receptionist", "failure"),
        ("auth.token", cast.sophie.pk, "receptionist", "success"),
    ]


# --- Enrolment ---------------------------------------------------------------------------


def test_staff_set_up_an_authenticator_with_an_administrators_enrolment_code(
    cast: Cast,
) -> None:
    code = mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)

    exchanged = Api().post(
        "/mfa/enrolment-token",
        {"email": cast.sophie.email, "password": PASSWORD, "enrolment_code": code},
    )
    assert exchanged.status_code == 200
    assert exchanged.json()["expires_in_minutes"] == 15
    enrolling = Api()
    enrolling.headers["HTTP_AUTHORIZATION"] = f"Bearer {exchanged.json()['token']}"

    # The enrolment token opens the MFA endpoints and nothing else.
    assert enrolling.get("/appointments").status_code == 401
    begun = enrolling.post("/mfa/totp/begin", {})
    assert begun.status_code == 200
    body = begun.json()
    assert body["provisioning_uri"].startswith("otpauth://totp/")
    assert body["qr_svg"].startswith("<svg")
    device = TOTPDevice.objects.get(pk=body["device_id"])
    assert body["secret"] in body["provisioning_uri"]

    confirmed = enrolling.post("/mfa/totp/confirm", {"code": totp_code(device)})
    assert confirmed.status_code == 200
    recovery = confirmed.json()["recovery_codes"]
    assert len(recovery) == 10

    # Done: the enrolment token has ended, and Sophie signs in with her app.
    assert enrolling.post("/mfa/totp/begin", {}).status_code == 401
    assert (
        ApiToken.objects.get(user=cast.sophie, scope=TokenScope.MFA_ENROLMENT).revoked_at
        is not None
    )
    with_code = sign_in(cast.sophie.email, otp=recovery[0])
    assert with_code.status_code == 200


def test_an_enrolment_code_works_once_and_only_with_the_password(cast: Cast) -> None:
    code = mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)
    body = {"email": cast.sophie.email, "password": PASSWORD, "enrolment_code": code}

    wrong_password = Api().post("/mfa/enrolment-token", {**body, "password": "wrong password"})
    assert (wrong_password.status_code, error_code(wrong_password)) == (401, "bad_credentials")
    wrong_code = Api().post("/mfa/enrolment-token", {**body, "enrolment_code": "aaaa-bbbb-cccc"})
    assert (wrong_code.status_code, error_code(wrong_code)) == (401, "bad_enrolment_code")
    assert Api().post("/mfa/enrolment-token", body).status_code == 200
    reused = Api().post("/mfa/enrolment-token", body)
    assert (reused.status_code, error_code(reused)) == (401, "bad_enrolment_code")


def test_someone_elses_enrolment_code_is_useless(cast: Cast) -> None:
    code = mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)
    response = Api().post(
        "/mfa/enrolment-token",
        {"email": cast.karim.email, "password": PASSWORD, "enrolment_code": code},
    )
    assert error_code(response) == "bad_enrolment_code"


def test_recovery_codes_on_demand_need_a_current_code(cast: Cast) -> None:
    device = enrol(cast.sophie)
    token = sign_in(cast.sophie.email, otp=totp_code(device)).json()["token"]
    api = Api(language="en")
    api.headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"

    missing = api.post("/mfa/recovery-codes", {})
    assert (missing.status_code, error_code(missing)) == (403, "second_factor_required")
    wrong = api.post("/mfa/recovery-codes", {"otp": "000000"})
    assert (wrong.status_code, error_code(wrong)) == (403, "bad_second_factor")
    assert "not valid" in wrong.json()["error"]["message"]
    with clock.frozen_now(clock.now() + timedelta(seconds=30)):
        issued = api.post("/mfa/recovery-codes", {"otp": totp_code(device)})
    assert issued.status_code == 200
    assert len(issued.json()["recovery_codes"]) == 10


def test_a_patient_may_add_an_authenticator_with_a_normal_token(cast: Cast) -> None:
    marie = Api(cast.marie)
    begun = marie.post("/mfa/totp/begin", {})
    assert begun.status_code == 200
    device = TOTPDevice.objects.get(pk=begun.json()["device_id"])
    wrong = marie.post("/mfa/totp/confirm", {"code": "12345"})
    assert (wrong.status_code, error_code(wrong)) == (422, "bad_second_factor")
    assert marie.post("/mfa/totp/confirm", {"code": totp_code(device)}).status_code == 200
    # A second confirmation has nothing left to confirm.
    again = marie.post("/mfa/totp/confirm", {"code": totp_code(device)})
    assert (again.status_code, error_code(again)) == (409, "no_pending_enrolment")


def test_mfa_endpoints_need_a_token(cast: Cast) -> None:
    for path in ("/mfa/totp/begin", "/mfa/totp/confirm", "/mfa/recovery-codes"):
        response = Api().post(path, {"code": "123456"})
        assert response.status_code == 401, path


def test_an_operator_issues_an_enrolment_code_from_the_command_line(cast: Cast) -> None:
    out = StringIO()
    call_command("issue_enrolment_code", "  Sophie@Example.test", stdout=out)
    code = out.getvalue().split(": ", 1)[1].split(" ", 1)[0]
    assert mfa.use_enrolment_code(cast.sophie, code)
    with pytest.raises(CommandError):
        call_command("issue_enrolment_code", "nobody@example.test", stdout=out)


def test_staff_tokens_from_before_two_factors_are_revoked_on_upgrade(cast: Cast) -> None:
    migration = importlib.import_module("rdv.accounts.migrations.0003_revoke_staff_tokens")
    Api(cast.marie)
    for user in (cast.sophie, cast.paul):
        create_token(user=user, scope=TokenScope.API, lifetime=timedelta(days=1))
    cast.paul.is_staff = True
    cast.paul.save()

    migration.revoke_staff_tokens(django_apps, None)

    live = ApiToken.objects.filter(revoked_at__isnull=True)
    assert list(live.values_list("user_id", flat=True)) == [cast.marie.pk]
