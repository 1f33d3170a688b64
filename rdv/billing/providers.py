"""The payment providers: the built-in test provider and Stripe.

Stripe is spoken to over plain HTTP (urllib, no SDK), as rdv.notifications.senders does
for Twilio: form-encoded requests, a secret key as Bearer token, an Idempotency-Key on
every POST so a retry after a timeout or a crash can never charge or refund twice.
https://docs.stripe.com/api/payment_intents/create
https://docs.stripe.com/api/refunds/create
https://docs.stripe.com/api/idempotent_requests

Every function here runs outside any database transaction (it may wait on the network)
and raises ProviderError when the provider did not answer usefully.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from rdv.billing.models import Payment, Provider, Refund

logger = logging.getLogger(__name__)

STRIPE_TIMEOUT_SECONDS = 20
# Stripe's error code when the charge was already refunded in full (e.g. from the
# dashboard): our refund is then done, not failed.
ALREADY_REFUNDED = "charge_already_refunded"


class ProviderError(Exception):
    """The provider did not do it. `permanent`: retrying the same request cannot help
    (Stripe refused it: 400, 402, 404); otherwise (network, 429, 5xx) try again later."""

    def __init__(self, reason: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason[:300]
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class Created:
    provider_ref: str
    client_secret: str


@dataclass(frozen=True)
class RefundOutcome:
    """Stripe's refund statuses: succeeded, pending (wait for the webhook or ask again),
    requires_action, failed, canceled."""

    provider_ref: str
    status: str


def create_payment(payment: Payment) -> Created:
    """Ask the provider to create the payment; the same payment gives the same answer."""
    if payment.provider == Provider.TEST:
        # No card form to unlock: our own page pays it.
        return Created(provider_ref=f"test_{payment.pk}", client_secret="")  # nosec B106
    answer = stripe_post(
        "/v1/payment_intents",
        {
            "amount": str(payment.total_cents),
            "currency": payment.currency.lower(),
            "automatic_payment_methods[enabled]": "true",
            "metadata[payment_id]": str(payment.pk),
            "description": "RDV Santé — recherche de rendez-vous",
        },
        idempotency_key=payment.idempotency_key,
    )
    ref, secret = answer.get("id"), answer.get("client_secret")
    if not (isinstance(ref, str) and ref.startswith("pi_") and isinstance(secret, str)):
        raise ProviderError("Stripe answered without a PaymentIntent id or client_secret")
    return Created(provider_ref=ref, client_secret=secret)


def refund_payment(refund: Refund, payment: Payment) -> RefundOutcome:
    """Refund the payment in full; once Stripe has a refund id, only ask how it went."""
    if payment.provider == Provider.TEST:
        return RefundOutcome(provider_ref=f"test_refund_{refund.pk}", status="succeeded")
    if refund.provider_ref:
        answer = stripe_get(f"/v1/refunds/{urllib.parse.quote(refund.provider_ref)}")
    else:
        try:
            answer = stripe_post(
                "/v1/refunds",
                {
                    "payment_intent": payment.provider_ref,
                    "metadata[refund_id]": str(refund.pk),
                    "metadata[payment_id]": str(payment.pk),
                },
                idempotency_key=f"refund-{refund.pk}",
            )
        except ProviderError as exc:
            if exc.code == ALREADY_REFUNDED:
                return RefundOutcome(provider_ref=refund.provider_ref, status="succeeded")
            raise
    ref, status = answer.get("id"), answer.get("status")
    if not (isinstance(ref, str) and ref.startswith("re_") and isinstance(status, str)):
        raise ProviderError("Stripe answered without a refund id or status")
    return RefundOutcome(provider_ref=ref, status=status)


def stripe_post(path: str, fields: dict[str, str], *, idempotency_key: str) -> dict[str, Any]:
    return _stripe(
        path,
        data=urllib.parse.urlencode(fields).encode(),
        extra_headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Idempotency-Key": idempotency_key,
        },
        method="POST",
    )


def stripe_get(path: str) -> dict[str, Any]:
    return _stripe(path, data=None, extra_headers={}, method="GET")


def _stripe(
    path: str, *, data: bytes | None, extra_headers: dict[str, str], method: str
) -> dict[str, Any]:
    if not settings.STRIPE_SECRET_KEY:
        raise ProviderError("STRIPE_SECRET_KEY is not set", permanent=True)
    request = urllib.request.Request(  # noqa: S310 (https in production, a setting)
        settings.STRIPE_API_BASE + path,
        data=data,
        headers={
            "Authorization": f"Bearer {settings.STRIPE_SECRET_KEY}",
            "Accept": "application/json",
            **extra_headers,
        },
        method=method,
    )
    try:
        with urllib.request.urlopen(  # noqa: S310  # nosec B310
            request, timeout=STRIPE_TIMEOUT_SECONDS
        ) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        kind, code, message = _stripe_error(exc)
        # 4xx: Stripe refused this very request (a retry with the same key gets the same
        # answer); 409 (idempotency conflict in flight), 429 and 5xx may pass later.
        permanent = 400 <= exc.code < 500 and exc.code not in (409, 429)
        raise ProviderError(
            f"Stripe {exc.code}: {kind} {code} {message}".strip(), permanent=permanent, code=code
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ProviderError(f"Stripe unreachable: {type(exc).__name__}") from exc
    if not isinstance(answer, dict):
        raise ProviderError("Stripe answered something other than a JSON object")
    return answer


def _stripe_error(exc: urllib.error.HTTPError) -> tuple[str, str, str]:
    """(type, code, message) from Stripe's documented {"error": {...}} body."""
    try:
        data = json.loads(exc.read() or b"{}")
    except ValueError:
        return "", "", "unreadable error"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return "", "", "unreadable error"
    return (
        str(error.get("type", "")),
        str(error.get("code", "")),
        str(error.get("message", ""))[:200],
    )
