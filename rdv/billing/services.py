"""Every write to payments, refunds and provider events: the one path for each change.

- A payment is written pending in the caller's transaction (start_payment), then created
  at the provider outside any transaction (create_with_provider), then settled by the
  provider's word: the test provider's page or Stripe's signed webhook.
- Settling is a compare-and-set on the payment's status, and the finder's hook runs in the
  same transaction: a request is opened exactly when its payment is recorded paid.
- A refund is a row (at most one per payment, the database says so) written in the
  caller's transaction; the worker carries it out (process_due_refunds), retrying with
  back-off under the same Idempotency-Key.
- A Stripe event is recorded once (unique event id) in the transaction that applies it:
  a replayed or concurrent duplicate delivery changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.audit.services import Subject, record
from rdv.billing import providers
from rdv.billing.models import (
    Payment,
    PaymentStatus,
    Provider,
    Refund,
    RefundStatus,
    WebhookEvent,
)
from rdv.core import clock
from rdv.core.errors import Conflict, DomainError, NotFound
from rdv.core.money import Price

logger = logging.getLogger(__name__)

# What the audit log calls the payment provider when it, not a person, changed something.
PROVIDER_ROLE = "payment-provider"
WORKER_ROLE = "worker"
# The first retry of a refund after a failed try, doubling each time.
REFUND_RETRY_SECONDS = 60
# A claimed refund belongs to its worker this long (a killed worker's refund is retried
# after it, under the same Idempotency-Key).
REFUND_LEASE_SECONDS = 300
# A refund Stripe reports as pending is asked about again after this (the webhook
# usually comes first).
REFUND_RECHECK_SECONDS = 3600
PAYMENT_RETRY_AFTER_SECONDS = 30


class PaymentUnavailable(DomainError):
    """The payment provider could not be reached or refused to start the payment; the
    payment stays pending and the same call can be tried again."""

    status = 503
    code = "payment_unavailable"
    default_message = _(
        "Payment is unavailable for the moment. Nothing was charged; please try again "
        "in a few minutes."
    )
    retry_after = PAYMENT_RETRY_AFTER_SECONDS


class WebhookRejected(DomainError):
    """A webhook that is not provably Stripe's, or not readable: answered 400."""

    status = 400
    code = "webhook_rejected"
    default_message = _("This webhook could not be verified.")


# --- Payments ----------------------------------------------------------------------


def start_payment(*, account: User, price: Price) -> Payment:
    """One pending payment for `price`, in the caller's transaction; no provider call."""
    return Payment.objects.create(
        account=account,
        provider=settings.PAYMENT_PROVIDER,
        idempotency_key=secrets.token_urlsafe(32),
        price_cents=price.price_cents,
        gst_cents=price.gst_cents,
        qst_cents=price.qst_cents,
        total_cents=price.total_cents,
        created_at=clock.now(),
    )


def create_with_provider(payment_id: int) -> Payment:
    """Create the payment at its provider (outside any transaction: it waits on the
    network) and keep its reference and client secret. Calling it again is harmless:
    a payment already created is returned as it is, and a retry after a failure sends
    the same Idempotency-Key, so Stripe answers with the same PaymentIntent."""
    payment = Payment.objects.filter(pk=payment_id).first()
    if payment is None:
        raise NotFound()
    if payment.provider_ref or payment.status != PaymentStatus.PENDING:
        return payment
    try:
        created = providers.create_payment(payment)
    except providers.ProviderError as exc:
        logger.warning("payment %s could not be created: %s", payment.pk, exc.reason)
        Payment.objects.filter(pk=payment.pk).update(last_error=exc.reason)
        raise PaymentUnavailable() from exc
    Payment.objects.filter(pk=payment.pk, provider_ref="").update(
        provider_ref=created.provider_ref, client_secret=created.client_secret, last_error=""
    )
    payment.refresh_from_db()
    return payment


def pay_with_test_provider(*, account: User, payment_id: int, succeed: bool) -> Payment:
    """The built-in provider's "card form": pay (or fail) one's own pending test payment."""
    payment = Payment.objects.filter(pk=payment_id, account=account).first()
    if payment is None:
        raise NotFound()
    if payment.provider != Provider.TEST:
        raise Conflict(_("This payment is not made with test payments."), code="not_test_payment")
    payment = create_with_provider(payment.pk)
    with transaction.atomic():
        # The row lock makes the status check and the change one step (PostgreSQL);
        # SQLite's writer lock does the same.
        _lock_request_of(payment.pk)
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != PaymentStatus.PENDING:
            raise Conflict(_("This payment is already settled."), code="payment_settled")
        if succeed:
            _settle_succeeded(locked, from_statuses=(PaymentStatus.PENDING,))
        else:
            _settle_failed(locked, error="Declined (test card)")
    payment.refresh_from_db()
    return payment


def payment_succeeded(*, provider: str, provider_ref: str) -> bool:
    """The provider says it has the money: mark the payment paid (paid_at, receipt
    number) and tell the finder, in one transaction. True if this call changed it; a
    repeat changes nothing. Money received is always recorded, even for a payment we had
    given up (cancelled or failed): the finder's hook then refunds what it no longer
    needs."""
    with transaction.atomic():
        payment = _locked_payment(provider, provider_ref)
        if payment is None:
            logger.warning("%s reported an unknown payment %s paid", provider, provider_ref)
            return False
        settleable = (PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.CANCELLED)
        return _settle_succeeded(payment, from_statuses=settleable)


def payment_failed(*, provider: str, provider_ref: str, error: str) -> bool:
    """The provider refused the payment: pending → failed, and the finder is told, in one
    transaction. True if this call changed it."""
    with transaction.atomic():
        payment = _locked_payment(provider, provider_ref)
        if payment is None or payment.status != PaymentStatus.PENDING:
            return False
        return _settle_failed(payment, error=error)


def cancel_pending_payment(payment: Payment) -> None:
    """No longer wanted (the request was cancelled before it was paid): pending →
    cancelled, in the caller's transaction. A payment that still succeeds at the provider
    afterwards is recorded and refunded (see payment_succeeded)."""
    changed = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
        status=PaymentStatus.CANCELLED
    )
    if changed:
        payment.status = PaymentStatus.CANCELLED


def _locked_payment(provider: str, provider_ref: str) -> Payment | None:
    """The payment, row-locked, after its finder request (the one lock order)."""
    if not provider_ref:
        return None
    payment_id = (
        Payment.objects.filter(provider=provider, provider_ref=provider_ref)
        .values_list("pk", flat=True)
        .first()
    )
    if payment_id is None:
        return None
    _lock_request_of(payment_id)
    return (
        Payment.objects.select_for_update()
        .filter(provider=provider, provider_ref=provider_ref)
        .first()
    )


def _lock_request_of(payment_id: int) -> None:
    from rdv.finder.services import lock_request_of_payment  # noqa: PLC0415 (finder imports us)

    lock_request_of_payment(payment_id)


def _settle_succeeded(payment: Payment, *, from_statuses: tuple[str, ...]) -> bool:
    from rdv.finder.services import on_payment_succeeded  # noqa: PLC0415 (finder imports us)

    now = clock.now()
    receipt_number = f"RDV-{clock.local_date(now).year}-{payment.pk:06d}"
    changed = Payment.objects.filter(pk=payment.pk, status__in=from_statuses).update(
        status=PaymentStatus.SUCCEEDED, paid_at=now, receipt_number=receipt_number, last_error=""
    )
    if not changed:
        return False
    payment.refresh_from_db()
    record(
        "payment.succeeded",
        actor=None,
        role=PROVIDER_ROLE,
        subject=Subject(object_type="payment", object_id=str(payment.pk)),
    )
    on_payment_succeeded(payment)
    return True


def _settle_failed(payment: Payment, *, error: str) -> bool:
    from rdv.finder.services import on_payment_failed  # noqa: PLC0415 (finder imports us)

    changed = Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
        status=PaymentStatus.FAILED, last_error=error[:300]
    )
    if not changed:
        return False
    payment.refresh_from_db()
    on_payment_failed(payment)
    return True


# --- Refunds -----------------------------------------------------------------------


def request_refund(payment: Payment, *, reason: str) -> Refund | None:
    """The one full refund of a paid payment, written in the caller's transaction and
    carried out by the worker after commit. None if the payment is not paid. A second
    or concurrent call returns the refund already there: the OneToOne makes a second row
    impossible, and the losing insert is undone in its own savepoint."""
    current = Payment.objects.filter(pk=payment.pk).values_list("status", flat=True).first()
    if current != PaymentStatus.SUCCEEDED:
        return None
    existing = Refund.objects.filter(payment_id=payment.pk).first()
    if existing is not None:
        return existing
    now = clock.now()
    try:
        with transaction.atomic():
            refund = Refund.objects.create(
                payment_id=payment.pk,
                amount_cents=payment.total_cents,
                reason=reason[:20],
                created_at=now,
                due_at=now,
            )
    except IntegrityError:
        # Another transaction wrote it first (PostgreSQL waited for it to commit).
        return Refund.objects.get(payment_id=payment.pk)
    record(
        "payment.refund_requested",
        actor=None,
        role=WORKER_ROLE,
        subject=Subject(object_type="payment", object_id=str(payment.pk)),
    )
    transaction.on_commit(_queue_refunds, robust=True)
    return refund


def _queue_refunds() -> None:
    from rdv.billing.tasks import process_refunds  # noqa: PLC0415 (tasks imports us)

    process_refunds.enqueue()


def process_due_refunds(*, limit: int = 50) -> int:
    """Carry out due refunds (the worker). Returns how many completed in this run."""
    now = clock.now()
    done = 0
    for pk in claim_due_refunds(now=now, limit=limit):
        done += refund_one(pk, now=now)
    return done


def claim_due_refunds(*, now: datetime, limit: int) -> list[int]:
    """Take up to `limit` due refunds: their due time moves past a lease, so another
    worker does not take them meanwhile, and a worker killed mid-call leaves them to be
    retried once the lease ends."""
    lease_end = now + timedelta(seconds=REFUND_LEASE_SECONDS)
    with transaction.atomic():
        due = Refund.objects.filter(status=RefundStatus.PENDING, due_at__lte=now).order_by(
            "due_at", "id"
        )
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            Refund.objects.filter(pk__in=ids, status=RefundStatus.PENDING).update(due_at=lease_end)
    return ids


def refund_one(pk: int, *, now: datetime) -> int:
    """Ask the provider for one claimed refund (outside any transaction); 1 if done."""
    refund = Refund.objects.select_related("payment").filter(pk=pk).first()
    if refund is None or refund.status != RefundStatus.PENDING:
        return 0
    try:
        outcome = providers.refund_payment(refund, refund.payment)
    except providers.ProviderError as exc:
        _refund_try_failed(refund, exc.reason, now=now, permanent=exc.permanent)
        return 0
    if outcome.status == "succeeded":
        return 1 if refund_succeeded(refund.pk, provider_ref=outcome.provider_ref) else 0
    if outcome.status in ("failed", "canceled"):
        refund_failed(refund.pk, provider_ref=outcome.provider_ref, error=outcome.status)
        return 0
    # pending / requires_action: Stripe works on it; its webhook, or our next look, ends it.
    Refund.objects.filter(pk=pk, status=RefundStatus.PENDING).update(
        provider_ref=outcome.provider_ref,
        due_at=now + timedelta(seconds=REFUND_RECHECK_SECONDS),
    )
    return 0


def _refund_try_failed(refund: Refund, reason: str, *, now: datetime, permanent: bool) -> None:
    attempts = refund.attempts + 1
    if permanent or attempts >= settings.REFUND_MAX_ATTEMPTS:
        Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(attempts=attempts)
        refund_failed(refund.pk, provider_ref=refund.provider_ref, error=reason)
        return
    delay = timedelta(seconds=REFUND_RETRY_SECONDS * 2 ** (attempts - 1))
    Refund.objects.filter(pk=refund.pk, status=RefundStatus.PENDING).update(
        attempts=attempts, due_at=now + delay, last_error=reason[:300]
    )
    logger.warning("refund %s failed (try %s), retried later: %s", refund.pk, attempts, reason)


def refund_succeeded(refund_id: int, *, provider_ref: str) -> bool:
    """pending → succeeded, audited; True if this call changed it."""
    with transaction.atomic():
        changes: dict[str, Any] = {
            "status": RefundStatus.SUCCEEDED,
            "completed_at": clock.now(),
            "last_error": "",
        }
        if provider_ref:
            changes["provider_ref"] = provider_ref
        changed = Refund.objects.filter(pk=refund_id, status=RefundStatus.PENDING).update(**changes)
        if changed:
            payment_id = Refund.objects.values_list("payment_id", flat=True).get(pk=refund_id)
            record(
                "payment.refunded",
                actor=None,
                role=WORKER_ROLE,
                subject=Subject(object_type="payment", object_id=str(payment_id)),
            )
    return bool(changed)


def refund_failed(refund_id: int, *, provider_ref: str, error: str) -> bool:
    """pending → failed for good: someone must look (it stays listed in the admin)."""
    changed = Refund.objects.filter(pk=refund_id, status=RefundStatus.PENDING).update(
        status=RefundStatus.FAILED, provider_ref=provider_ref, last_error=error[:300]
    )
    if changed:
        logger.error(
            "REFUND FAILED for good: refund %s needs a person (Stripe dashboard): %s",
            refund_id,
            error,
        )
    return bool(changed)


# --- Stripe webhooks ---------------------------------------------------------------


def handle_stripe_webhook(*, payload: bytes, signature_header: str) -> str:
    """Verify, record once, apply. Returns a short outcome ("duplicate", "paid", …).
    The event's row and its effect commit together: a crash in between leaves neither,
    and Stripe's retry applies it then."""
    verify_stripe_signature(payload, signature_header)
    event = _parse_event(payload)
    with transaction.atomic():
        try:
            with transaction.atomic():
                WebhookEvent.objects.create(
                    provider=Provider.STRIPE,
                    event_id=event["id"],
                    event_type=event["type"],
                    received_at=clock.now(),
                )
        except IntegrityError:
            return "duplicate"
        return _apply_event(event["type"], event["data"]["object"])


def stripe_signature(payload: bytes, timestamp: int, secret: str) -> str:
    """Stripe's v1 scheme: hex HMAC-SHA256 of "<timestamp>.<raw body>" under the secret."""
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_stripe_signature(payload: bytes, header: str) -> None:
    """https://docs.stripe.com/webhooks#verify-manually: any v1 signature may match (a
    secret being rolled has two), compared in constant time, and the signed timestamp
    must be within the tolerance of now (an old delivery replayed by someone else)."""
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise WebhookRejected(code="webhook_not_configured")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
        if key == "t" and re.fullmatch(r"[0-9]{1,12}", value):
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookRejected(code="webhook_signature_missing")
    expected = stripe_signature(payload, timestamp, secret)
    # Bytes: compare_digest refuses a str with non-ASCII characters (a forged header).
    given_bytes = [given.encode("utf-8", "replace") for given in candidates]
    if not any(hmac.compare_digest(expected.encode(), given) for given in given_bytes):
        raise WebhookRejected(code="webhook_signature_invalid")
    if abs(clock.now().timestamp() - timestamp) > settings.STRIPE_WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookRejected(code="webhook_stale")


def _parse_event(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookRejected(code="webhook_unreadable") from exc
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and 0 < len(event["id"]) <= 120
        and isinstance(event.get("type"), str)
        and len(event["type"]) <= 80
        and isinstance(event.get("data"), dict)
        and isinstance(event["data"].get("object"), dict)
    ):
        raise WebhookRejected(code="webhook_unreadable")
    return event


def _apply_event(kind: str, obj: dict[str, Any]) -> str:
    if kind == "payment_intent.succeeded":
        ref = _stripe_payment_ref(obj)
        return (
            "paid" if payment_succeeded(provider=Provider.STRIPE, provider_ref=ref) else "no change"
        )
    if kind == "payment_intent.payment_failed":
        ref = _stripe_payment_ref(obj)
        error = obj.get("last_payment_error")
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        failed = payment_failed(
            provider=Provider.STRIPE, provider_ref=ref, error=message or "payment failed"
        )
        return "failed" if failed else "no change"
    if kind == "charge.refunded":
        if obj.get("refunded") is not True:
            return "ignored: partial refund"
        return _refund_event(
            refund_ref="", payment_ref=str(obj.get("payment_intent") or ""), status="succeeded"
        )
    if kind in ("refund.updated", "refund.created", "refund.failed"):
        return _refund_event(
            refund_ref=str(obj.get("id") or ""),
            payment_ref=str(obj.get("payment_intent") or ""),
            status=str(obj.get("status") or ""),
        )
    return "ignored"


def _stripe_payment_ref(intent: dict[str, Any]) -> str:
    """The PaymentIntent's id, adopted by our payment named in its metadata if the
    event overtook the moment we stored the id (create_with_provider)."""
    ref = str(intent.get("id") or "")
    metadata = intent.get("metadata")
    payment_id = metadata.get("payment_id") if isinstance(metadata, dict) else None
    if ref.startswith("pi_") and isinstance(payment_id, str) and payment_id.isdigit():
        Payment.objects.filter(
            pk=int(payment_id), provider=Provider.STRIPE, provider_ref=""
        ).update(provider_ref=ref)
    return ref


def _refund_event(*, refund_ref: str, payment_ref: str, status: str) -> str:
    match = Q(provider_ref=refund_ref) if refund_ref else Q(pk__in=[])
    if payment_ref:
        match |= Q(payment__provider=Provider.STRIPE, payment__provider_ref=payment_ref)
    refund = Refund.objects.filter(match).first()
    if refund is None:
        logger.warning(
            "Stripe reported refund %s of %s we did not ask for", refund_ref, payment_ref
        )
        return "ignored: unknown refund"
    if status == "succeeded":
        return "refunded" if refund_succeeded(refund.pk, provider_ref=refund_ref) else "no change"
    if status in ("failed", "canceled"):
        changed = refund_failed(refund.pk, provider_ref=refund_ref, error=f"Stripe: {status}")
        return "refund failed" if changed else "no change"
    return "no change"
