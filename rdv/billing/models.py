"""Payments for the appointment finder, their refunds, and the provider webhooks received.

What the database guarantees:
- a payment's total is its price plus GST plus QST (check constraint);
- a payment is refunded at most once (one Refund per Payment, a OneToOne), so a deadline
  sweep running twice, or a cancellation racing the deadline, cannot refund twice;
- a provider's webhook event is processed at most once (unique provider + event id);
- a receipt number is given once (unique), when the payment succeeds.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import in_choices


class Provider(models.TextChoices):
    # Built in, for the embedded mode and the demo: a page of ours stands in for the card form.
    TEST = "test", _("Test payments")
    STRIPE = "stripe", _("Stripe")


class PaymentStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for payment")
    SUCCEEDED = "succeeded", _("Paid")
    FAILED = "failed", _("Payment failed")
    # No longer wanted: the request was cancelled before it was paid.
    CANCELLED = "cancelled", _("Cancelled")


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Refund being processed")
    SUCCEEDED = "succeeded", _("Refunded")
    FAILED = "failed", _("Refund failed")


class Payment(models.Model):
    """One payment for one finder request: the price and its two taxes, in cents (CAD)."""

    Status = PaymentStatus

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="payments",
    )
    provider = models.CharField(max_length=10, choices=Provider.choices)
    # The provider's id of the payment (Stripe: the PaymentIntent "pi_…"); set once created.
    provider_ref = models.CharField(max_length=120, blank=True)
    # Sent as the provider's Idempotency-Key when the payment is created: a retry after a
    # timeout cannot charge twice.
    idempotency_key = models.CharField(max_length=64, unique=True)
    # What the patient's browser needs to pay (Stripe: the PaymentIntent's client_secret).
    client_secret = models.CharField(max_length=200, blank=True)
    price_cents = models.PositiveIntegerField()
    gst_cents = models.PositiveIntegerField()
    qst_cents = models.PositiveIntegerField()
    total_cents = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, default="CAD")
    status = models.CharField(
        max_length=10, choices=PaymentStatus.choices, default=PaymentStatus.PENDING
    )
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    # Given when the payment succeeds, in order: RDV-<year>-<6 digits>.
    receipt_number = models.CharField(max_length=20, null=True, blank=True, unique=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(total_cents=F("price_cents") + F("gst_cents") + F("qst_cents")),
                name="payment_total_is_sum",
            ),
            models.CheckConstraint(
                condition=in_choices("provider", Provider), name="payment_provider_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("status", PaymentStatus), name="payment_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded")
                | Q(paid_at__isnull=False, receipt_number__isnull=False),
                name="payment_succeeded_has_receipt",
            ),
            models.UniqueConstraint(
                fields=["provider", "provider_ref"],
                condition=~Q(provider_ref=""),
                name="payment_provider_ref_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"payment {self.pk}"


class Refund(models.Model):
    """The full refund of a payment: at most one per payment (the OneToOne is the rule)."""

    Status = RefundStatus

    payment = models.OneToOneField(Payment, on_delete=models.PROTECT, related_name="refund")
    amount_cents = models.PositiveIntegerField()
    # Why, for the patient and the books: "deadline" or "cancelled".
    reason = models.CharField(max_length=20)
    status = models.CharField(
        max_length=10, choices=RefundStatus.choices, default=RefundStatus.PENDING
    )
    provider_ref = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The worker retries a pending refund from then on (back-off after a failed try).
    due_at = models.DateTimeField()
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("status", RefundStatus), name="refund_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="succeeded") | Q(completed_at__isnull=False),
                name="refund_succeeded_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_at", "id"], condition=Q(status="pending"), name="refund_due_idx"
            )
        ]

    def __str__(self) -> str:
        return f"refund of payment {self.payment_id}"


class WebhookEvent(models.Model):
    """A provider's event we processed: a replayed delivery finds its row and changes nothing."""

    provider = models.CharField(max_length=10, choices=Provider.choices)
    event_id = models.CharField(max_length=120)
    event_type = models.CharField(max_length=80)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} event {self.event_id}"
