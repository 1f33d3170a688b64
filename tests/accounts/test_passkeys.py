"""Passkeys end to end through the API, with a software authenticator (helpers.py) in
place of the phone: real key pairs, real signatures, py_webauthn's real verification."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdv.accounts import mfa
from rdv.accounts.models import Passkey, User, WebAuthnChallenge
from rdv.audit.models import AuditEntry
from rdv.core import clock
from tests.accounts.helpers import SoftAuthenticator, enrol, totp_code
from tests.conftest import PASSWORD, Api, Cast


def register(api: Api, device: SoftAuthenticator, **create: Any) -> Any:
    begun = api.post("/mfa/passkeys/register/begin", {})
    assert begun.status_code == 200, begun.content
    body = begun.json()
    return api.post(
        "/mfa/passkeys/register/finish",
        {
            "challenge_id": body["challenge_id"],
            "credential": device.create(body["options"], **create),
            "name": "Téléphone",
        },
    )


def begin_sign_in() -> dict[str, Any]:
    response = Api().post("/mfa/passkeys/sign-in/begin")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def finish_sign_in(challenge_id: str, credential: dict[str, Any], language: str = "fr") -> Any:
    return Api(language=language).post(
        "/mfa/passkeys/sign-in/finish", {"challenge_id": challenge_id, "credential": credential}
    )


def sign_in(device: SoftAuthenticator, **get: Any) -> Any:
    begun = begin_sign_in()
    return finish_sign_in(begun["challenge_id"], device.get(begun["options"], **get))


@pytest.fixture
def maries_phone(cast: Cast) -> SoftAuthenticator:
    device = SoftAuthenticator()
    assert register(Api(cast.marie), device).status_code == 200
    return device


def test_registration_options_ask_for_a_discoverable_verified_passkey(cast: Cast) -> None:
    options = Api(cast.marie).post("/mfa/passkeys/register/begin", {}).json()["options"]
    assert options["rp"] == {"id": "localhost", "name": "RDV Santé"}
    assert options["user"]["name"] == cast.marie.email
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]


def test_a_patient_registers_a_passkey_and_signs_in_with_it(cast: Cast) -> None:
    device = SoftAuthenticator()
    registered = register(Api(cast.marie), device)
    assert registered.status_code == 200
    body = registered.json()
    assert body["name"] == "Téléphone"
    assert len(body["recovery_codes"]) == 10  # her first factor
    passkey = Passkey.objects.get(user=cast.marie)
    assert passkey.transports == ["internal", "hybrid"]
    assert passkey.sign_count == 0

    signed_in = sign_in(device)
    assert signed_in.status_code == 200
    api = Api()
    api.headers["HTTP_AUTHORIZATION"] = f"Bearer {signed_in.json()['token']}"
    assert api.get("/appointments").status_code == 200
    passkey.refresh_from_db()
    assert passkey.sign_count == 1
    assert passkey.last_used_at == clock.now()
    assert sign_in(device).status_code == 200


def test_staff_enrol_a_passkey_with_an_enrolment_token_and_sign_in_with_it(cast: Cast) -> None:
    code = mfa.issue_enrolment_code(user=cast.sophie, issued_by=cast.marc)
    token = (
        Api()
        .post(
            "/mfa/enrolment-token",
            {"email": cast.sophie.email, "password": PASSWORD, "enrolment_code": code},
        )
        .json()["token"]
    )
    enrolling = Api()
    enrolling.headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    device = SoftAuthenticator()
    assert register(enrolling, device).status_code == 200
    signed_in = sign_in(device)
    assert signed_in.status_code == 200
    assert AuditEntry.objects.filter(
        action="auth.passkey", actor_id=cast.sophie.pk, actor_role="receptionist"
    ).exists()


def test_a_tampered_signature_is_refused(maries_phone: SoftAuthenticator) -> None:
    response = sign_in(maries_phone, tamper=True)
    assert (response.status_code, response.json()["error"]["code"]) == (401, "passkey_rejected")


def test_an_answer_from_another_origin_is_refused(cast: Cast) -> None:
    device = SoftAuthenticator()
    refused = register(Api(cast.marie), device, origin="https://phishing.example")
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "passkey_rejected")
    assert not Passkey.objects.exists()

    assert register(Api(cast.marie), device).status_code == 200
    response = sign_in(device, origin="https://phishing.example")
    assert response.status_code == 401


def test_an_answer_for_another_site_is_refused(maries_phone: SoftAuthenticator) -> None:
    assert sign_in(maries_phone, rp_id="phishing.example").status_code == 401


def test_a_passkey_without_user_verification_is_refused(cast: Cast) -> None:
    device = SoftAuthenticator()
    assert register(Api(cast.marie), device, user_verified=False).status_code == 422
    assert register(Api(cast.marie), device).status_code == 200
    assert sign_in(device, user_verified=False).status_code == 401


def test_a_challenge_is_good_for_one_attempt(maries_phone: SoftAuthenticator) -> None:
    begun = begin_sign_in()
    answer = maries_phone.get(begun["options"])
    assert finish_sign_in(begun["challenge_id"], answer).status_code == 200
    replayed = finish_sign_in(begun["challenge_id"], answer)
    assert (replayed.status_code, replayed.json()["error"]["code"]) == (422, "challenge_expired")

    begun = begin_sign_in()
    failed = finish_sign_in(begun["challenge_id"], maries_phone.get(begun["options"], tamper=True))
    assert failed.status_code == 401
    retried = finish_sign_in(begun["challenge_id"], maries_phone.get(begun["options"]))
    assert retried.json()["error"]["code"] == "challenge_expired"


def test_a_challenge_expires_after_five_minutes(maries_phone: SoftAuthenticator) -> None:
    begun = begin_sign_in()
    answer = maries_phone.get(begun["options"])
    with clock.frozen_now(clock.now() + timedelta(minutes=5)):
        response = finish_sign_in(begun["challenge_id"], answer)
    assert response.json()["error"]["code"] == "challenge_expired"


def test_an_assertion_signed_for_another_challenge_is_refused(
    maries_phone: SoftAuthenticator,
) -> None:
    first, second = begin_sign_in(), begin_sign_in()
    response = finish_sign_in(second["challenge_id"], maries_phone.get(first["options"]))
    assert response.status_code == 401


def test_a_signature_counter_that_goes_back_is_refused(maries_phone: SoftAuthenticator) -> None:
    assert sign_in(maries_phone).status_code == 200  # counter now 1
    maries_phone.sign_count = 0  # a cloned authenticator would lag behind
    assert sign_in(maries_phone).status_code == 401


def test_an_unregistered_passkey_is_refused(cast: Cast) -> None:
    stranger = SoftAuthenticator()
    begun = begin_sign_in()
    stranger.user_handle = b"someone"
    response = finish_sign_in(begun["challenge_id"], stranger.get(begun["options"]))
    assert response.status_code == 401


def test_an_inactive_account_cannot_sign_in_with_its_passkey(
    cast: Cast, maries_phone: SoftAuthenticator
) -> None:
    User.objects.filter(pk=cast.marie.pk).update(is_active=False)
    assert sign_in(maries_phone).status_code == 401


def test_a_challenge_for_registration_cannot_finish_a_sign_in(
    cast: Cast, maries_phone: SoftAuthenticator
) -> None:
    begun = Api(cast.paul).post("/mfa/passkeys/register/begin", {}).json()
    answer = maries_phone.get({**begun["options"], "rpId": "localhost"})
    response = finish_sign_in(begun["challenge_id"], answer)
    assert response.json()["error"]["code"] == "challenge_expired"


def test_someone_elses_registration_challenge_is_useless(cast: Cast) -> None:
    begun = Api(cast.marie).post("/mfa/passkeys/register/begin", {}).json()
    response = Api(cast.paul).post(
        "/mfa/passkeys/register/finish",
        {
            "challenge_id": begun["challenge_id"],
            "credential": SoftAuthenticator().create(begun["options"]),
        },
    )
    assert response.json()["error"]["code"] == "challenge_expired"
    assert not Passkey.objects.exists()


def test_the_same_passkey_cannot_be_registered_twice(cast: Cast) -> None:
    device = SoftAuthenticator()
    marie = Api(cast.marie)
    recovery = register(marie, device).json()["recovery_codes"]
    # Marie now has a factor, so adding another one takes a code.
    begun = marie.post("/mfa/passkeys/register/begin", {"otp": recovery[0]}).json()
    assert begun["options"]["excludeCredentials"][0]["id"] == device.create(begun["options"])["id"]
    again = marie.post(
        "/mfa/passkeys/register/finish",
        {"challenge_id": begun["challenge_id"], "credential": device.create(begun["options"])},
    )
    assert (again.status_code, again.json()["error"]["code"]) == (422, "passkey_rejected")
    assert Passkey.objects.count() == 1


def test_adding_a_passkey_next_to_an_authenticator_needs_its_code(cast: Cast) -> None:
    device = enrol(cast.sophie)
    token = (
        Api()
        .post(
            "/auth/token",
            {"email": cast.sophie.email, "password": PASSWORD, "otp": totp_code(device)},
        )
        .json()["token"]
    )
    api = Api(language="en")
    api.headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    refused = api.post("/mfa/passkeys/register/begin", {})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "second_factor_required")
    with clock.frozen_now(clock.now() + timedelta(seconds=30)):
        begun = api.post("/mfa/passkeys/register/begin", {"otp": totp_code(device)})
    assert begun.status_code == 200


def test_passkey_sign_ins_are_audited(cast: Cast, maries_phone: SoftAuthenticator) -> None:
    before = AuditEntry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    sign_in(maries_phone, tamper=True)
    sign_in(maries_phone)
    assert list(
        AuditEntry.objects.filter(id__gt=before)
        .order_by("id")
        .values_list("action", "actor_id", "outcome")
    ) == [("auth.passkey", cast.marie.pk, "failure"), ("auth.passkey", cast.marie.pk, "success")]


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("fr", "Cette clé d’accès n’a pas pu être vérifiée. Veuillez réessayer."),
        ("en", "This passkey could not be verified. Please try again."),
    ],
)
def test_a_refused_passkey_is_explained_in_french_and_english(
    maries_phone: SoftAuthenticator, language: str, message: str
) -> None:
    begun = begin_sign_in()
    response = finish_sign_in(
        begun["challenge_id"], maries_phone.get(begun["options"], tamper=True), language
    )
    assert response.json()["error"]["message"] == message


def test_expired_challenges_are_swept(cast: Cast) -> None:
    begin_sign_in()
    with clock.frozen_now(clock.now() + timedelta(minutes=6)):
        begin_sign_in()
    assert WebAuthnChallenge.objects.count() == 1


# --- Hostile input -------------------------------------------------------------------------

b64ish = st.one_of(st.text(max_size=20), st.binary(max_size=80).map(lambda b: b.hex()))
credentials = st.fixed_dictionaries(
    {},
    optional={
        "id": b64ish,
        "rawId": b64ish,
        "type": st.sampled_from(["public-key", "x", ""]),
        "response": st.dictionaries(
            st.sampled_from(
                [
                    "clientDataJSON",
                    "attestationObject",
                    "authenticatorData",
                    "signature",
                    "userHandle",
                    "transports",
                ]
            ),
            st.one_of(b64ish, st.integers(), st.none(), st.lists(st.text(max_size=5))),
        ),
        "authenticatorAttachment": st.one_of(st.text(max_size=10), st.integers()),
    },
)
fuzz = settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(credential=credentials, mangle=st.sampled_from(["none", "client_data", "auth_data"]))
def test_no_passkey_answer_produces_a_server_error(
    cast: Cast, maries_phone: SoftAuthenticator, credential: dict[str, Any], mangle: str
) -> None:
    begun = begin_sign_in()
    if mangle != "none":
        credential = maries_phone.get(begun["options"])
        key = "clientDataJSON" if mangle == "client_data" else "authenticatorData"
        credential["response"][key] = credential["response"][key][:-6] + "AAAA"
    assert finish_sign_in(begun["challenge_id"], credential).status_code in (401, 422)

    # Paul has no factor yet, so his registrations need no step-up.
    paul = Api(cast.paul)
    reg = paul.post("/mfa/passkeys/register/begin", {})
    if reg.status_code == 200:
        finished = paul.post(
            "/mfa/passkeys/register/finish",
            {"challenge_id": reg.json()["challenge_id"], "credential": credential},
        )
        assert finished.status_code == 422, finished.content


@fuzz
@given(
    body=st.text(max_size=60)
    | st.dictionaries(st.text(max_size=12), st.text(max_size=12)).map(json.dumps)
)
def test_no_mfa_request_body_produces_a_server_error(cast: Cast, body: str) -> None:
    for api in (Api(), Api(cast.paul)):
        for path in (
            "/mfa/enrolment-token",
            "/mfa/totp/begin",
            "/mfa/totp/confirm",
            "/mfa/recovery-codes",
            "/mfa/passkeys/register/begin",
            "/mfa/passkeys/register/finish",
            "/mfa/passkeys/sign-in/begin",
            "/mfa/passkeys/sign-in/finish",
        ):
            response = api.post(path, raw=body)
            assert response.status_code < 500, (path, body, response.content)
