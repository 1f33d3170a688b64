"""Refunds: at most one per payment, carried out by the worker, retried under one key."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django_tasks_db.models import DBTaskResult

from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.billing import services
from rdv.billing.models import Payment, Refund, RefundStatus
from rdv.billing.tasks import process_refunds, schedule_refunds
from rdv.core import clock
from tests.billing.conftest import FakeStripe, new_payment
from tests.conftest import Cast, on_postgres

pytestmark = pytest.mark.django_db


def paid(account: User) -> Payment:
    payment = services.create_with_provider(new_payment(account).pk)
    services.payment_succeeded(provider=payment.provider, provider_ref=payment.provider_ref)
    return Payment.objects.get(pk=payment.pk)


def refund_of(payment: Payment, reason: str = "deadline") -> Refund | None:
    with transaction.atomic():
        return services.request_refund(payment, reason=reason)


def later(seconds: int) -> Any:
    return clock.frozen_now(clock.now() + timedelta(seconds=seconds), all_threads=True)


def test_asking_twice_gives_one_refund(cast: Cast) -> None:
    payment = paid(cast.marie)
    first = refund_of(payment, "cancelled")
    second = refund_of(payment, "deadline")
    assert first is not None
    assert second is not None
    assert first.pk == second.pk
    assert Refund.objects.count() == 1
    assert (first.amount_cents, first.reason, first.status) == (2179, "cancelled", "pending")
    assert AuditEntry.objects.filter(action="payment.refund_requested").count() == 1


def test_the_database_refuses_a_second_refund(cast: Cast) -> None:
    payment = paid(cast.marie)
    refund_of(payment)
    with pytest.raises(IntegrityError), transaction.atomic():
        Refund.objects.create(
            payment=payment, amount_cents=1, reason="x", created_at=clock.now(), due_at=clock.now()
        )


def test_an_unpaid_payment_is_not_refunded(cast: Cast) -> None:
    payment = new_payment(cast.marie)
    assert refund_of(payment) is None
    services.cancel_pending_payment(payment)
    assert refund_of(payment) is None
    assert not Refund.objects.exists()


def test_a_refund_request_queues_the_worker_after_commit(cast: Cast) -> None:
    payment = paid(cast.marie)
    queued = DBTaskResult.objects.filter(task_path=process_refunds.module_path)
    with transaction.atomic():
        services.request_refund(payment, reason="deadline")
        assert not queued.exists()
    # pytest-django's test transaction runs on_commit callbacks only when asked to.


def test_a_refund_request_queues_the_worker_when_committed(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    payment = paid(cast.marie)
    with django_capture_on_commit_callbacks(execute=True):
        refund_of(payment)
    assert DBTaskResult.objects.filter(task_path=process_refunds.module_path).count() == 1


def test_schedule_refunds_keeps_one_sweep_queued(db: Any) -> None:
    schedule_refunds()
    schedule_refunds()
    assert DBTaskResult.objects.filter(task_path=process_refunds.module_path).count() == 1


def test_the_test_provider_refunds_at_once(cast: Cast) -> None:
    refund = refund_of(paid(cast.marie))
    assert refund is not None
    assert services.process_due_refunds() == 1
    done = Refund.objects.get(pk=refund.pk)
    assert done.status == RefundStatus.SUCCEEDED
    assert done.completed_at == clock.now()
    assert done.provider_ref == f"test_refund_{refund.pk}"
    assert AuditEntry.objects.filter(action="payment.refunded").count() == 1
    assert services.process_due_refunds() == 0


def test_the_worker_asks_stripe_once_with_the_refund_key(cast: Cast, stripe: FakeStripe) -> None:
    payment = paid(cast.marie)
    refund = refund_of(payment)
    assert refund is not None
    assert services.process_due_refunds() == 1
    [call] = stripe.posts("/v1/refunds")
    assert call["idempotency_key"] == f"refund-{refund.pk}"
    assert call["form"]["payment_intent"] == payment.provider_ref
    done = Refund.objects.get(pk=refund.pk)
    assert done.status == RefundStatus.SUCCEEDED
    assert done.provider_ref.startswith("re_")
    with later(3600):
        assert services.process_due_refunds() == 0
    assert len(stripe.posts("/v1/refunds")) == 1


def test_a_stripe_error_is_retried_later_with_the_same_key(cast: Cast, stripe: FakeStripe) -> None:
    refund = refund_of(paid(cast.marie))
    assert refund is not None
    stripe.fail_next(500, "api_error", "Something went wrong on Stripe's end.")
    assert services.process_due_refunds() == 0
    waiting = Refund.objects.get(pk=refund.pk)
    assert (waiting.status, waiting.attempts) == (RefundStatus.PENDING, 1)
    assert waiting.due_at == clock.now() + timedelta(seconds=services.REFUND_RETRY_SECONDS)
    assert "500" in waiting.last_error
    assert services.process_due_refunds() == 0  # not due yet: Stripe is not asked
    assert len(stripe.posts("/v1/refunds")) == 1
    with later(services.REFUND_RETRY_SECONDS):
        assert services.process_due_refunds() == 1
    keys = [c["idempotency_key"] for c in stripe.posts("/v1/refunds")]
    assert keys == [f"refund-{refund.pk}", f"refund-{refund.pk}"]
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED


def test_a_refund_fails_for_good_after_the_last_try(
    cast: Cast, stripe: FakeStripe, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.REFUND_MAX_ATTEMPTS = 2
    refund = refund_of(paid(cast.marie))
    assert refund is not None
    stripe.fail_next(503, "api_error", "down")
    stripe.fail_next(503, "api_error", "still down")
    services.process_due_refunds()
    with later(services.REFUND_RETRY_SECONDS), caplog.at_level(logging.ERROR):
        services.process_due_refunds()
    failed = Refund.objects.get(pk=refund.pk)
    assert (failed.status, failed.attempts) == (RefundStatus.FAILED, 2)
    assert "REFUND FAILED" in caplog.text
    assert not AuditEntry.objects.filter(action="payment.refunded").exists()


def test_a_refund_stripe_refuses_fails_at_once(cast: Cast, stripe: FakeStripe) -> None:
    refund = refund_of(paid(cast.marie))
    assert refund is not None
    stripe.fail_next(400, "invalid_request_error", "No such payment_intent", "resource_missing")
    services.process_due_refunds()
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.FAILED


def test_a_charge_already_refunded_counts_as_refunded(cast: Cast, stripe: FakeStripe) -> None:
    refund = refund_of(paid(cast.marie))
    assert refund is not None
    stripe.fail_next(400, "invalid_request_error", "Already refunded", "charge_already_refunded")
    assert services.process_due_refunds() == 1
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED


def test_a_pending_stripe_refund_ends_with_its_webhook(cast: Cast, stripe: FakeStripe) -> None:
    from tests.billing.test_webhooks import deliver, event, signature  # noqa: PLC0415

    payment = paid(cast.marie)
    refund = refund_of(payment)
    assert refund is not None
    stripe.refund_status = "pending"
    assert services.process_due_refunds() == 0
    waiting = Refund.objects.get(pk=refund.pk)
    assert waiting.status == RefundStatus.PENDING
    assert waiting.provider_ref.startswith("re_")
    obj = {
        "id": waiting.provider_ref,
        "object": "refund",
        "status": "succeeded",
        "payment_intent": payment.provider_ref,
    }
    payload = event("refund.updated", obj, "evt_refund")
    assert deliver(payload, signature(payload)).json() == {"outcome": "refunded"}
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED
    assert deliver(payload, signature(payload)).json() == {"outcome": "duplicate"}
    assert AuditEntry.objects.filter(action="payment.refunded").count() == 1


def test_a_pending_stripe_refund_is_looked_up_again_later(cast: Cast, stripe: FakeStripe) -> None:
    refund = refund_of(paid(cast.marie))
    assert refund is not None
    stripe.refund_status = "pending"
    services.process_due_refunds()
    ref = Refund.objects.get(pk=refund.pk).provider_ref
    stripe.refunds[ref]["status"] = "succeeded"
    with later(services.REFUND_RECHECK_SECONDS):
        assert services.process_due_refunds() == 1
    assert [r["method"] for r in stripe.received if r["path"].startswith("/v1/refunds")] == [
        "POST",
        "GET",
    ]


def test_charge_refunded_webhook_completes_the_refund(cast: Cast, stripe: FakeStripe) -> None:
    from tests.billing.test_webhooks import deliver, event, signature  # noqa: PLC0415

    payment = paid(cast.marie)
    refund = refund_of(payment)
    assert refund is not None
    charge = {
        "id": "ch_1Fake",
        "object": "charge",
        "payment_intent": payment.provider_ref,
        "refunded": True,
        "amount_refunded": 2179,
    }
    payload = event("charge.refunded", charge, "evt_charge")
    assert deliver(payload, signature(payload)).json() == {"outcome": "refunded"}
    assert Refund.objects.get(pk=refund.pk).status == RefundStatus.SUCCEEDED
    assert services.process_due_refunds() == 0
    assert stripe.posts("/v1/refunds") == []


def test_two_workers_never_take_the_same_refund(cast: Cast) -> None:
    refund_of(paid(cast.marie))
    first = services.claim_due_refunds(now=clock.now(), limit=10)
    second = services.claim_due_refunds(now=clock.now(), limit=10)
    assert len(first) == 1
    assert second == []
    # A worker killed mid-call: its refund is taken again once the lease has ended.
    with later(services.REFUND_LEASE_SECONDS):
        assert services.claim_due_refunds(now=clock.now(), limit=10) == first


@pytest.mark.django_db(transaction=True)
def test_two_threads_asking_at_once_give_one_refund(cast: Cast) -> None:
    payment = paid(cast.marie)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def ask(reason: str) -> None:
        barrier.wait()
        try:
            refund = refund_of(payment, reason)
            results.append(refund.pk if refund else 0)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(r,)) for r in ("deadline", "cancelled")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 2
    assert len(set(results)) == 1
    assert Refund.objects.filter(payment=payment).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_refund_written_while_another_commits_returns_that_one(cast: Cast) -> None:
    """PostgreSQL: the second insert waits on the first's unique key, then fails in its
    savepoint; the caller gets the first refund and its own transaction goes on."""
    if not on_postgres():
        pytest.skip("SQLite serialises writers: the second never sees the first uncommitted")
    payment = paid(cast.marie)
    first_written, second_waiting = threading.Event(), threading.Event()
    found: dict[str, Any] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                found["first"] = services.request_refund(payment, reason="deadline")
                first_written.set()
                second_waiting.wait(timeout=60)
        finally:
            connection.close()

    def second() -> None:
        try:
            with transaction.atomic():
                found["second"] = services.request_refund(payment, reason="cancelled")
                found["after"] = Payment.objects.filter(pk=payment.pk).exists()
        except BaseException as exc:
            found["error"] = exc
        finally:
            connection.close()

    one = threading.Thread(target=first)
    one.start()
    assert first_written.wait(timeout=60)
    two = threading.Thread(target=second)
    two.start()
    _wait_for_a_blocked_backend()
    second_waiting.set()
    one.join(timeout=60)
    two.join(timeout=60)
    assert "error" not in found
    assert found["second"].pk == found["first"].pk
    assert found["after"] is True
    assert Refund.objects.get(payment=payment).reason == "deadline"


def _wait_for_a_blocked_backend() -> None:
    """Until another session waits on a lock (the second insert behind the first)."""
    for _ in range(6000):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
        threading.Event().wait(0.01)
    pytest.fail("the second request_refund never waited on the first")


def test_the_webhook_for_a_refund_we_did_not_ask_is_ignored(cast: Cast, stripe: FakeStripe) -> None:
    payload = json.dumps(
        {
            "id": "evt_x",
            "type": "refund.updated",
            "data": {"object": {"id": "re_other", "status": "succeeded", "payment_intent": "pi_x"}},
        }
    ).encode()
    from tests.billing.test_webhooks import signature  # noqa: PLC0415

    response = Client().post(
        "/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature(payload),
    )
    assert response.json() == {"outcome": "ignored: unknown refund"}
