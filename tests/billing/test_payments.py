"""Payments with the built-in test provider: written pending, settled once, by their owner."""

from __future__ import annotations

import pytest
from django.db import transaction

from rdv.audit.models import AuditEntry
from rdv.billing import services
from rdv.billing.models import Payment, PaymentStatus, Provider
from rdv.core.errors import Conflict, NotFound
from rdv.core.money import finder_price
from tests.billing.conftest import FinderHooks, new_payment
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def test_start_payment_writes_one_pending_payment_with_its_taxes(cast: Cast) -> None:
    payment = services.start_payment(account=cast.marie, price=finder_price())
    assert (payment.price_cents, payment.gst_cents, payment.qst_cents) == (1895, 95, 189)
    assert payment.total_cents == 2179
    assert payment.status == PaymentStatus.PENDING
    assert payment.provider == Provider.TEST
    assert payment.provider_ref == ""
    assert len(payment.idempotency_key) >= 32
    assert new_payment(cast.marie).idempotency_key != payment.idempotency_key


def test_start_payment_rolls_back_with_its_caller(cast: Cast) -> None:
    def file_then_fail() -> None:
        with transaction.atomic():
            new_payment(cast.marie)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        file_then_fail()
    assert not Payment.objects.exists()


def test_test_provider_creates_without_network_and_only_once(cast: Cast) -> None:
    payment = new_payment(cast.marie)
    created = services.create_with_provider(payment.pk)
    assert created.provider_ref == f"test_{payment.pk}"
    assert services.create_with_provider(payment.pk).provider_ref == created.provider_ref


def test_create_with_provider_of_a_missing_payment_is_not_found(cast: Cast) -> None:
    with pytest.raises(NotFound):
        services.create_with_provider(999_999)


def test_paying_with_the_test_card_opens_the_request_once(
    cast: Cast, finder_hooks: FinderHooks
) -> None:
    payment = new_payment(cast.marie)
    paid = services.pay_with_test_provider(account=cast.marie, payment_id=payment.pk, succeed=True)
    assert paid.status == PaymentStatus.SUCCEEDED
    assert paid.paid_at is not None
    assert paid.receipt_number == f"RDV-2026-{payment.pk:06d}"
    assert finder_hooks.calls == [("succeeded", payment.pk)]
    assert AuditEntry.objects.filter(action="payment.succeeded").count() == 1
    with pytest.raises(Conflict):
        services.pay_with_test_provider(account=cast.marie, payment_id=payment.pk, succeed=True)
    assert finder_hooks.calls == [("succeeded", payment.pk)]


def test_a_declined_test_card_fails_the_payment(cast: Cast, finder_hooks: FinderHooks) -> None:
    payment = new_payment(cast.marie)
    failed = services.pay_with_test_provider(
        account=cast.marie, payment_id=payment.pk, succeed=False
    )
    assert failed.status == PaymentStatus.FAILED
    assert failed.receipt_number is None
    assert finder_hooks.calls == [("failed", payment.pk)]


def test_nobody_pays_someone_elses_payment(cast: Cast, finder_hooks: FinderHooks) -> None:
    payment = new_payment(cast.marie)
    with pytest.raises(NotFound):
        services.pay_with_test_provider(account=cast.paul, payment_id=payment.pk, succeed=True)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING
    assert finder_hooks.calls == []


def test_a_stripe_payment_cannot_be_paid_with_the_test_card(cast: Cast) -> None:
    payment = new_payment(cast.marie)
    Payment.objects.filter(pk=payment.pk).update(provider=Provider.STRIPE, provider_ref="pi_1")
    with pytest.raises(Conflict):
        services.pay_with_test_provider(account=cast.marie, payment_id=payment.pk, succeed=True)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.PENDING


def test_a_cancelled_payment_cannot_be_paid_with_the_test_card(
    cast: Cast, finder_hooks: FinderHooks
) -> None:
    payment = new_payment(cast.marie)
    services.cancel_pending_payment(payment)
    assert payment.status == PaymentStatus.CANCELLED
    with pytest.raises(Conflict):
        services.pay_with_test_provider(account=cast.marie, payment_id=payment.pk, succeed=True)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.CANCELLED
    assert finder_hooks.calls == []


def test_payment_succeeded_is_a_compare_and_set(cast: Cast, finder_hooks: FinderHooks) -> None:
    payment = services.create_with_provider(new_payment(cast.marie).pk)
    ref = payment.provider_ref
    assert services.payment_succeeded(provider="test", provider_ref=ref) is True
    receipt = Payment.objects.get(pk=payment.pk).receipt_number
    assert services.payment_succeeded(provider="test", provider_ref=ref) is False
    assert services.payment_failed(provider="test", provider_ref=ref, error="late") is False
    assert Payment.objects.get(pk=payment.pk).receipt_number == receipt
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert finder_hooks.calls == [("succeeded", payment.pk)]


def test_money_received_after_a_cancellation_is_still_recorded(
    cast: Cast, finder_hooks: FinderHooks
) -> None:
    # The patient cancelled while the provider was charging: the money is real, so the
    # payment is recorded paid and the finder's hook (which refunds it) is told.
    payment = services.create_with_provider(new_payment(cast.marie).pk)
    services.cancel_pending_payment(payment)
    assert services.payment_succeeded(provider="test", provider_ref=payment.provider_ref)
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
    assert finder_hooks.calls == [("succeeded", payment.pk)]


def test_an_unknown_provider_reference_changes_nothing(
    cast: Cast, finder_hooks: FinderHooks
) -> None:
    new_payment(cast.marie)
    assert services.payment_succeeded(provider="test", provider_ref="test_0") is False
    assert services.payment_succeeded(provider="test", provider_ref="") is False
    assert not Payment.objects.filter(status=PaymentStatus.SUCCEEDED).exists()
    assert finder_hooks.calls == []


def test_cancel_pending_payment_leaves_a_paid_payment_alone(cast: Cast) -> None:
    payment = new_payment(cast.marie)
    services.pay_with_test_provider(account=cast.marie, payment_id=payment.pk, succeed=True)
    services.cancel_pending_payment(Payment.objects.get(pk=payment.pk))
    assert Payment.objects.get(pk=payment.pk).status == PaymentStatus.SUCCEEDED
