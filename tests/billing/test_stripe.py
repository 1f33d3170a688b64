"""Stripe's Payment Intents at the HTTP boundary: FakeStripe answers as Stripe documents.

https://docs.stripe.com/api/payment_intents/create
https://docs.stripe.com/api/idempotent_requests
"""

from __future__ import annotations

from typing import Any

import pytest

from rdv.billing import services
from rdv.billing.models import Payment, PaymentStatus, Provider
from tests.billing.conftest import SECRET_KEY, FakeStripe, new_payment
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def test_a_payment_intent_is_created_with_the_total_and_the_payment_key(
    cast: Cast, stripe: FakeStripe
) -> None:
    payment = new_payment(cast.marie)
    assert payment.provider == Provider.STRIPE
    created = services.create_with_provider(payment.pk)
    [call] = stripe.posts("/v1/payment_intents")
    assert call["authorization"] == f"Bearer {SECRET_KEY}"
    assert call["idempotency_key"] == payment.idempotency_key
    assert call["content_type"] == "application/x-www-form-urlencoded"
    assert call["form"]["amount"] == "2179"
    assert call["form"]["currency"] == "cad"
    assert call["form"]["automatic_payment_methods[enabled]"] == "true"
    assert call["form"]["metadata[payment_id]"] == str(payment.pk)
    assert created.provider_ref.startswith("pi_")
    assert created.client_secret == f"{created.provider_ref}_secret_Zx9Fake"
    assert created.status == PaymentStatus.PENDING


def test_creating_again_asks_stripe_nothing(cast: Cast, stripe: FakeStripe) -> None:
    payment = new_payment(cast.marie)
    first = services.create_with_provider(payment.pk)
    again = services.create_with_provider(payment.pk)
    assert again.provider_ref == first.provider_ref
    assert len(stripe.posts("/v1/payment_intents")) == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [(500, "api_error"), (429, "rate_limit_error"), (402, "card_error"), (401, "x")],
)
def test_stripe_refusing_leaves_the_payment_pending_and_retryable(
    cast: Cast, stripe: FakeStripe, status: int, kind: str
) -> None:
    payment = new_payment(cast.marie)
    stripe.fail_next(status, kind, "Something went wrong on Stripe's end.")
    with pytest.raises(services.PaymentUnavailable) as refused:
        services.create_with_provider(payment.pk)
    assert refused.value.status == 503
    assert refused.value.retry_after > 0
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.status, stored.provider_ref) == (PaymentStatus.PENDING, "")
    assert str(status) in stored.last_error
    # The retry sends the same Idempotency-Key: Stripe cannot make a second intent.
    retried = services.create_with_provider(payment.pk)
    keys = [c["idempotency_key"] for c in stripe.posts("/v1/payment_intents")]
    assert keys == [payment.idempotency_key, payment.idempotency_key]
    assert retried.provider_ref.startswith("pi_")
    assert retried.last_error == ""


def test_stripe_unreachable_is_payment_unavailable(
    cast: Cast, stripe: FakeStripe, settings: Any
) -> None:
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # discard port: connection refused
    payment = new_payment(cast.marie)
    with pytest.raises(services.PaymentUnavailable):
        services.create_with_provider(payment.pk)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_a_lost_answer_retried_gets_the_same_intent(cast: Cast, stripe: FakeStripe) -> None:
    # Stripe created the intent but our process died before storing it: the retry's
    # Idempotency-Key makes Stripe answer with that same intent, so nothing is doubled.
    payment = new_payment(cast.marie)
    services.create_with_provider(payment.pk)
    first_ref = Payment.objects.get(pk=payment.pk).provider_ref
    Payment.objects.filter(pk=payment.pk).update(provider_ref="", client_secret="")
    assert services.create_with_provider(payment.pk).provider_ref == first_ref
    assert len(stripe.by_key) == 1
