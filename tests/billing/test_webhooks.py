"""Stripe's webhooks through the real URL: signed, recorded once, replays harmless.

https://docs.stripe.com/webhooks#verify-manually
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.billing import services
from rdv.billing.models import Payment, PaymentStatus, WebhookEvent
from rdv.core import clock
from tests.billing.conftest import WEBHOOK_SECRET, FakeStripe, FinderHooks, new_payment
from tests.conftest import Cast

pytestmark = pytest.mark.django_db
URL = "/webhooks/stripe/"


def event(kind: str, obj: dict[str, Any], event_id: str = "evt_1Fake") -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2025-06-30.basil",
            "type": kind,
            "livemode": False,
            "data": {"object": obj},
        }
    ).encode()


def signature(payload: bytes, *, secret: str = WEBHOOK_SECRET, age: int = 0) -> str:
    timestamp = int(clock.now().timestamp()) - age
    return f"t={timestamp},v1={services.stripe_signature(payload, timestamp, secret)}"


def deliver(payload: bytes, header: str | None) -> Any:
    headers = {} if header is None else {"Stripe-Signature": header}
    return Client().post(URL, data=payload, content_type="application/json", headers=headers)


@pytest.fixture
def intent(cast: Cast, stripe: FakeStripe) -> Payment:
    return services.create_with_provider(new_payment(cast.marie).pk)


def succeeded_event(payment: Payment, event_id: str = "evt_1Fake") -> bytes:
    return event(
        "payment_intent.succeeded",
        {
            "id": payment.provider_ref,
            "object": "payment_intent",
            "amount": payment.total_cents,
            "amount_received": payment.total_cents,
            "currency": "cad",
            "status": "succeeded",
            "metadata": {"payment_id": str(payment.pk)},
        },
        event_id,
    )


def test_a_signed_success_marks_the_payment_paid(
    intent: Payment, finder_hooks: FinderHooks
) -> None:
    payload = succeeded_event(intent)
    response = deliver(payload, signature(payload))
    assert response.status_code == 200
    assert response.json() == {"outcome": "paid"}
    paid = Payment.objects.get(pk=intent.pk)
    assert paid.status == PaymentStatus.SUCCEEDED
    assert paid.receipt_number == f"RDV-2026-{intent.pk:06d}"
    assert finder_hooks.calls == [("succeeded", intent.pk)]


def test_the_same_event_twice_changes_nothing(intent: Payment, finder_hooks: FinderHooks) -> None:
    payload = succeeded_event(intent)
    assert deliver(payload, signature(payload)).status_code == 200
    first = Payment.objects.get(pk=intent.pk)
    with clock.frozen_now(clock.now() + timedelta(seconds=90), all_threads=True):
        replay = deliver(payload, signature(payload))
    assert replay.status_code == 200
    assert replay.json() == {"outcome": "duplicate"}
    again = Payment.objects.get(pk=intent.pk)
    assert (again.receipt_number, again.paid_at) == (first.receipt_number, first.paid_at)
    assert WebhookEvent.objects.count() == 1
    assert Payment.objects.count() == 1
    assert AuditEntry.objects.filter(action="payment.succeeded").count() == 1
    assert finder_hooks.calls == [("succeeded", intent.pk)]


def test_a_second_event_for_a_paid_payment_changes_nothing(
    intent: Payment, finder_hooks: FinderHooks
) -> None:
    for event_id in ("evt_A", "evt_B"):
        payload = succeeded_event(intent, event_id)
        assert deliver(payload, signature(payload)).status_code == 200
    assert WebhookEvent.objects.count() == 2
    assert finder_hooks.calls == [("succeeded", intent.pk)]


def _refused(intent: Payment, finder_hooks: FinderHooks, payload: bytes, header: Any) -> None:
    response = deliver(payload, header)
    assert response.status_code == 400
    assert Payment.objects.get(pk=intent.pk).status == PaymentStatus.PENDING
    assert not WebhookEvent.objects.exists()
    assert finder_hooks.calls == []


def test_a_tampered_body_is_refused(intent: Payment, finder_hooks: FinderHooks) -> None:
    payload = succeeded_event(intent)
    header = signature(payload)
    tampered = payload.replace(b'"amount": 2179', b'"amount": 1')
    assert tampered != payload
    _refused(intent, finder_hooks, tampered, header)


def test_a_signature_with_another_secret_is_refused(
    intent: Payment, finder_hooks: FinderHooks
) -> None:
    payload = succeeded_event(intent)
    _refused(intent, finder_hooks, payload, signature(payload, secret="whsec_attacker"))


def test_a_stale_signature_is_refused(intent: Payment, finder_hooks: FinderHooks) -> None:
    payload = succeeded_event(intent)
    _refused(intent, finder_hooks, payload, signature(payload, age=301))


def test_a_signature_from_the_future_is_refused(intent: Payment, finder_hooks: FinderHooks) -> None:
    payload = succeeded_event(intent)
    _refused(intent, finder_hooks, payload, signature(payload, age=-301))


@pytest.mark.parametrize(
    "header",
    # "²" passes str.isdigit() but not int(); "é" is refused by compare_digest on str.
    [None, "", "t=abc,v1=00", "v1=00", "t=1", "garbage", "t=²,v1=00", "t=1,v1=é"],
)
def test_a_missing_or_malformed_header_is_refused(
    intent: Payment, finder_hooks: FinderHooks, header: str | None
) -> None:
    _refused(intent, finder_hooks, succeeded_event(intent), header)


def test_any_v1_signature_may_match(intent: Payment, finder_hooks: FinderHooks) -> None:
    # While a secret is rolled, Stripe signs with the old and the new one.
    payload = succeeded_event(intent)
    good = signature(payload)
    timestamp, good_v1 = good.split(",")
    header = f"{timestamp},v1={'0' * 64},{good_v1},v0=ignored"
    assert deliver(payload, header).status_code == 200
    assert finder_hooks.calls == [("succeeded", intent.pk)]


@pytest.mark.parametrize(
    "payload", [b"not json", b"[]", b'{"id": "evt_1"}', b'{"id": 1, "type": "x", "data": {}}']
)
def test_a_signed_but_unreadable_event_is_refused(
    intent: Payment, finder_hooks: FinderHooks, payload: bytes
) -> None:
    _refused(intent, finder_hooks, payload, signature(payload))


def test_no_webhook_secret_refuses_everything(
    intent: Payment, finder_hooks: FinderHooks, settings: Any
) -> None:
    payload = succeeded_event(intent)
    header = signature(payload)
    settings.STRIPE_WEBHOOK_SECRET = ""
    _refused(intent, finder_hooks, payload, header)


def test_only_post_is_answered() -> None:
    assert Client().get(URL).status_code == 405


def test_a_failed_payment_is_recorded_failed(intent: Payment, finder_hooks: FinderHooks) -> None:
    payload = event(
        "payment_intent.payment_failed",
        {
            "id": intent.provider_ref,
            "object": "payment_intent",
            "status": "requires_payment_method",
            "last_payment_error": {"type": "card_error", "message": "Your card was declined."},
            "metadata": {"payment_id": str(intent.pk)},
        },
    )
    assert deliver(payload, signature(payload)).json() == {"outcome": "failed"}
    failed = Payment.objects.get(pk=intent.pk)
    assert failed.status == PaymentStatus.FAILED
    assert failed.last_error == "Your card was declined."
    assert finder_hooks.calls == [("failed", intent.pk)]


def test_other_event_types_are_recorded_and_ignored(intent: Payment) -> None:
    payload = event("customer.created", {"id": "cus_1", "object": "customer"})
    assert deliver(payload, signature(payload)).json() == {"outcome": "ignored"}
    assert WebhookEvent.objects.filter(event_type="customer.created").count() == 1


def test_an_event_that_overtakes_our_stored_id_still_finds_its_payment(
    cast: Cast, stripe: FakeStripe, finder_hooks: FinderHooks
) -> None:
    payment = services.create_with_provider(new_payment(cast.marie).pk)
    ref = payment.provider_ref
    Payment.objects.filter(pk=payment.pk).update(provider_ref="")
    payment.provider_ref = ref
    payload = succeeded_event(payment)
    assert deliver(payload, signature(payload)).json() == {"outcome": "paid"}
    assert Payment.objects.get(pk=payment.pk).provider_ref == ref
    assert finder_hooks.calls == [("succeeded", payment.pk)]
