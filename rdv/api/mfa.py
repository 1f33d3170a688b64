"""Second factors: authenticator apps, recovery codes, passkeys (/api/v1/mfa/…).

Setting up a factor takes a full token, or the enrolment-only token that staff get from
`/mfa/enrolment-token` with their password and the code an administrator gave them.
"""

from __future__ import annotations

from base64 import b32encode

from django.conf import settings
from django.http import HttpRequest
from ninja import Router
from ninja.security import HttpBearer

from rdv.accounts import mfa, passkeys, services
from rdv.accounts.models import User
from rdv.api.auth import request_user
from rdv.api.limits import enforce
from rdv.api.schemas import (
    EnrolmentTokenIn,
    EnrolmentTokenOut,
    ErrorEnvelope,
    PasskeyOut,
    PasskeyRegistrationIn,
    PasskeySignInIn,
    RecoveryCodesOut,
    StepUpIn,
    TokenOut,
    TotpConfirmIn,
    TotpEnrolmentOut,
    WebAuthnOptionsOut,
    local,
)


class EnrolmentBearer(HttpBearer):
    """A full token or an enrolment-only one (refused everywhere else)."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        return services.user_for_enrolment(token)


router = Router(tags=["mfa"])
E = ErrorEnvelope


@router.post(
    "/enrolment-token",
    response={200: EnrolmentTokenOut, 400: E, 401: E, 422: E, 429: E},
)
def enrolment_token(request: HttpRequest, payload: EnrolmentTokenIn) -> EnrolmentTokenOut:
    """Exchange email, password and an administrator's enrolment code for a short token
    that can only set up a second factor."""
    token = services.issue_enrolment_token(
        email=payload.email, password=payload.password, enrolment_code=payload.enrolment_code
    )
    return EnrolmentTokenOut(token=token, expires_in_minutes=settings.MFA_ENROLMENT_TOKEN_MINUTES)


@router.post(
    "/totp/begin",
    auth=EnrolmentBearer(),
    response={200: TotpEnrolmentOut, 400: E, 401: E, 403: E, 422: E, 429: E},
)
def totp_begin(request: HttpRequest, payload: StepUpIn) -> TotpEnrolmentOut:
    """Start setting up an authenticator app: scan the QR code (or type the secret), then
    confirm with a first code. `otp` is needed if you already have a second factor."""
    device, uri, svg = mfa.start_totp_enrolment(request_user(request), otp=payload.otp)
    return TotpEnrolmentOut(
        device_id=device.pk,
        provisioning_uri=uri,
        secret=b32encode(device.bin_key).decode(),
        qr_svg=svg,
    )


@router.post(
    "/totp/confirm",
    auth=EnrolmentBearer(),
    response={200: RecoveryCodesOut, 400: E, 401: E, 409: E, 422: E, 429: E},
)
def totp_confirm(request: HttpRequest, payload: TotpConfirmIn) -> RecoveryCodesOut:
    """Confirm the authenticator with its current code. The first factor comes with ten
    recovery codes, shown this once. Each try is a code guess: the sign-in limits apply,
    counted with the web page's for the same account."""
    user = request_user(request)
    enforce(request, "signin", account=f"user:{user.pk}")
    return RecoveryCodesOut(recovery_codes=mfa.confirm_totp(user, payload.code))


@router.post(
    "/recovery-codes",
    auth=EnrolmentBearer(),
    response={200: RecoveryCodesOut, 400: E, 401: E, 403: E, 409: E, 422: E, 429: E},
)
def recovery_codes(request: HttpRequest, payload: StepUpIn) -> RecoveryCodesOut:
    """Replace your recovery codes (the old ones stop working); needs a current `otp`."""
    codes = mfa.regenerate_recovery_codes(request_user(request), otp=payload.otp)
    return RecoveryCodesOut(recovery_codes=codes)


@router.post(
    "/passkeys/register/begin",
    auth=EnrolmentBearer(),
    response={200: WebAuthnOptionsOut, 400: E, 401: E, 403: E, 422: E, 429: E},
)
def passkey_register_begin(request: HttpRequest, payload: StepUpIn) -> WebAuthnOptionsOut:
    """Options for navigator.credentials.create(); `otp` if you already have a factor."""
    handle, options = passkeys.begin_registration(request_user(request), otp=payload.otp)
    return WebAuthnOptionsOut(challenge_id=handle, options=options)


@router.post(
    "/passkeys/register/finish",
    auth=EnrolmentBearer(),
    response={200: PasskeyOut, 400: E, 401: E, 422: E},
)
def passkey_register_finish(request: HttpRequest, payload: PasskeyRegistrationIn) -> PasskeyOut:
    """Store the passkey the browser created (its JSON form, as `credential`)."""
    passkey, codes = passkeys.finish_registration(
        request_user(request),
        challenge_id=payload.challenge_id,
        credential=payload.credential,
        name=payload.name,
    )
    return PasskeyOut(
        id=passkey.pk,
        name=passkey.name,
        created_at=local(passkey.created_at),
        recovery_codes=codes,
    )


@router.post("/passkeys/sign-in/begin", response={200: WebAuthnOptionsOut})
def passkey_sign_in_begin(request: HttpRequest) -> WebAuthnOptionsOut:
    """Options for navigator.credentials.get(), for signing in without a password."""
    handle, options = passkeys.begin_authentication()
    return WebAuthnOptionsOut(challenge_id=handle, options=options)


@router.post(
    "/passkeys/sign-in/finish",
    response={200: TokenOut, 400: E, 401: E, 422: E},
)
def passkey_sign_in_finish(request: HttpRequest, payload: PasskeySignInIn) -> TokenOut:
    """Exchange the browser's signed answer for a bearer token, as /auth/token does."""
    token = services.sign_in_with_passkey(
        challenge_id=payload.challenge_id, credential=payload.credential
    )
    return TokenOut(token=token, expires_in_days=settings.API_TOKEN_TTL_DAYS)
