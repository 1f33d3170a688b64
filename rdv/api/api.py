from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja import NinjaAPI, Router

from rdv.accounts.services import issue_api_token
from rdv.api import booking, errors, finder, me, mfa, places, staff
from rdv.api.limits import enforce
from rdv.api.schemas import ErrorEnvelope, TokenIn, TokenOut

api = NinjaAPI(
    title="RDV Santé API",
    version="1",
    description="Find and book medical appointments in Quebec.",
    urls_namespace="api-v1",
)
errors.install(api)

auth_router = Router(tags=["auth"])


@auth_router.post(
    "/token",
    response={
        200: TokenOut,
        400: ErrorEnvelope,
        401: ErrorEnvelope,
        403: ErrorEnvelope,
        422: ErrorEnvelope,
        429: ErrorEnvelope,
    },
)
def token(request: HttpRequest, payload: TokenIn) -> TokenOut:
    """Exchange an email and password for a bearer token. Staff (and anyone who set up a
    second factor) also give `otp`: an authenticator code or a recovery code."""
    enforce(request, "token", account=payload.email.strip().lower())
    issued = issue_api_token(email=payload.email, password=payload.password, otp=payload.otp)
    return TokenOut(token=issued, expires_in_days=settings.API_TOKEN_TTL_DAYS)


api.add_router("/auth", auth_router)
api.add_router("", places.router)
api.add_router("", booking.router)
api.add_router("", me.router)
api.add_router("", staff.router)
api.add_router("/mfa", mfa.router)
api.add_router("/finder", finder.router)
