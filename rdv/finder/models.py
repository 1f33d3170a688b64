"""The appointment finder: paid requests, the offers made to them, every match decision,
the queue of slot events the matching engine works through, and free alerts.

What the database guarantees:
- a slot is offered to one request at a time, and a request holds one offer at a time
  (partial unique indexes on pending offers);
- a request is booked at most once (unique appointment);
- every status is one of its choices; a request's dates and deadline are ordered;
- an alert watches exactly one thing: a clinic, a practitioner or an area.

A pending offer holds its slot through the slot's own hold columns (scheduling.Slot:
hold_visitor = "offer:<offer id>", hold_expires_at = the offer's expiry), so the public
search, holds and bookings treat it as any other live hold, and it simply stops counting
when it expires. See docs/finder.md.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import in_choices
from rdv.scheduling.models import AppointmentType


class Mode(models.TextChoices):
    BOOK = "book", _("Book it for me")
    OFFER = "offer", _("Offer it to me first")


class RequestStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", _("Waiting for payment")
    # Paid and in the queue (filed_at set): the engine looks for a slot.
    OPEN = "open", _("Searching")
    BOOKED = "booked", _("Appointment booked")
    # The deadline passed without a booking: refunded.
    EXPIRED = "expired", _("Deadline passed, refunded")
    # The patient cancelled (refunded if it had been paid).
    CANCELLED = "cancelled", _("Cancelled")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")


class FinderRequest(models.Model):
    """What a patient asked the finder for. Requests are served in `filed_at` order (the
    moment payment made them open), then by id."""

    Status = RequestStatus

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="finder_requests"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.CASCADE, related_name="finder_requests"
    )
    mode = models.CharField(max_length=5, choices=Mode.choices)
    status = models.CharField(
        max_length=16, choices=RequestStatus.choices, default=RequestStatus.AWAITING_PAYMENT
    )
    appointment_type = models.CharField(max_length=20, choices=AppointmentType.choices)
    # Where: a municipality or postal code as typed (shown back), its point and a radius.
    place_label = models.CharField(max_length=120)
    latitude = models.FloatField()
    longitude = models.FloatField()
    radius_km = models.PositiveSmallIntegerField()
    # When: local dates (inclusive) and, optionally, weekly windows
    # [[weekday 0-6, "HH:MM", "HH:MM"], …]; empty: any time of those days.
    earliest_date = models.DateField()
    latest_date = models.DateField()
    time_windows = models.JSONField(default=list, blank=True)
    # A practitioner's spoken language (ISO 639-1), or empty for any.
    language = models.CharField(max_length=2, blank=True)
    # Nothing booked by then: the request expires and is refunded.
    deadline = models.DateTimeField()
    notify_by_email = models.BooleanField(default=True)
    notify_by_sms = models.BooleanField(default=False)
    created_at = models.DateTimeField()
    filed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    payment = models.OneToOneField(
        "billing.Payment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="finder_request",
    )
    appointment = models.OneToOneField(
        "scheduling.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="finder_request",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=in_choices("mode", Mode), name="finder_mode_valid"),
            models.CheckConstraint(
                condition=in_choices("status", RequestStatus), name="finder_status_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("appointment_type", AppointmentType),
                name="finder_type_valid",
            ),
            models.CheckConstraint(
                condition=Q(latest_date__gte=F("earliest_date")), name="finder_dates_ordered"
            ),
            models.CheckConstraint(
                condition=Q(radius_km__gte=1, radius_km__lte=200), name="finder_radius_range"
            ),
            models.CheckConstraint(
                condition=Q(deadline__gt=F("created_at")), name="finder_deadline_after_created"
            ),
            # In the queue only once paid; a booked request names its appointment.
            models.CheckConstraint(
                condition=~Q(status__in=["open", "booked", "expired"]) | Q(filed_at__isnull=False),
                name="finder_filed_when_paid",
            ),
            models.CheckConstraint(
                condition=~Q(status="booked") | Q(closed_at__isnull=False),
                name="finder_booked_closed",
            ),
            models.CheckConstraint(
                condition=Q(notify_by_email=True) | Q(notify_by_sms=True),
                name="finder_some_channel",
            ),
        ]
        indexes = [
            # The engine's question: which open requests of this type, in filing order.
            models.Index(
                fields=["appointment_type", "filed_at", "id"],
                condition=Q(status="open"),
                name="finder_open_queue_idx",
            ),
            models.Index(
                fields=["deadline"], condition=Q(status="open"), name="finder_open_deadline_idx"
            ),
            models.Index(fields=["account", "created_at"], name="finder_account_idx"),
        ]

    def __str__(self) -> str:
        return f"finder request {self.pk}"


class OfferStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for your answer")
    ACCEPTED = "accepted", _("Accepted")
    DECLINED = "declined", _("Declined")
    EXPIRED = "expired", _("Expired")
    # Taken back: the request was cancelled or expired, or the slot was cancelled.
    WITHDRAWN = "withdrawn", _("Withdrawn")


class Offer(models.Model):
    """A slot held for one request for a few minutes ("offer it to me first")."""

    Status = OfferStatus

    request = models.ForeignKey(FinderRequest, on_delete=models.CASCADE, related_name="offers")
    slot = models.ForeignKey(
        "scheduling.Slot", on_delete=models.CASCADE, related_name="finder_offers"
    )
    status = models.CharField(
        max_length=10, choices=OfferStatus.choices, default=OfferStatus.PENDING
    )
    offered_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("status", OfferStatus), name="offer_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("offered_at")), name="offer_expires_after_offered"
            ),
            models.UniqueConstraint(
                fields=["slot"], condition=Q(status="pending"), name="offer_one_pending_per_slot"
            ),
            models.UniqueConstraint(
                fields=["request"],
                condition=Q(status="pending"),
                name="offer_one_pending_per_request",
            ),
        ]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(status="pending"), name="offer_pending_idx"
            )
        ]

    def __str__(self) -> str:
        return f"offer {self.pk}"

    @property
    def holder_key(self) -> str:
        """What the slot's hold_visitor column holds while this offer is pending."""
        return f"offer:{self.pk}"


class Trigger(models.TextChoices):
    PUBLISHED = "published", _("Slot published")
    FREED = "freed", _("Slot freed by a cancellation or a move")
    HOLD_EXPIRED = "hold_expired", _("A hold on the slot expired")
    RELEASED = "released", _("Reserved slot opened to the public")
    REQUEST_FILED = "request_filed", _("Request filed")
    OFFER_DECLINED = "offer_declined", _("Offer declined")
    OFFER_EXPIRED = "offer_expired", _("Offer expired")


class SlotEvent(models.Model):
    """The matching engine's outbox (DESIGN.md invariant 5): written in the transaction
    that publishes or frees a slot, worked through by the worker in id order."""

    slot = models.ForeignKey(
        "scheduling.Slot", on_delete=models.CASCADE, related_name="finder_events"
    )
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    created_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("trigger", Trigger), name="slot_event_trigger_valid"
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"], condition=Q(processed_at__isnull=True), name="slot_event_todo_idx"
            )
        ]

    def __str__(self) -> str:
        return f"slot event {self.pk}"


class Outcome(models.TextChoices):
    OFFERED = "offered", _("Offered")
    BOOKED = "booked", _("Booked")
    # No open request fits this slot.
    NO_REQUEST = "no_request", _("No request fits")
    # The slot was no longer free, public and unheld when the engine tried (someone from
    # the public, or a clinic, was first): nothing given.
    TAKEN = "taken", _("Taken first by someone else")
    # The winner could not be booked (e.g. already has an appointment of that type).
    WINNER_REFUSED = "winner_refused", _("The first request could not take it")


class MatchDecision(models.Model):
    """One decision of the engine about one slot: which requests it fitted (in serving
    order), who won and why. The fairness report (finder.report) is read from these."""

    slot = models.ForeignKey(
        "scheduling.Slot",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="finder_decisions",
    )
    # Copied from the slot: the record outlives a slot removed by a schedule change.
    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.CASCADE, related_name="finder_decisions"
    )
    slot_start = models.DateTimeField()
    # Open to the public at the moment of the decision (visibility public, or released).
    slot_public = models.BooleanField()
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    decided_at = models.DateTimeField()
    # Ids of the requests the slot fitted, earliest filed first; the winner is the first
    # that could take it.
    eligible = models.JSONField(default=list)
    eligible_count = models.PositiveIntegerField(default=0)
    winner = models.ForeignKey(
        FinderRequest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="decisions_won",
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # [request id, why] for each request served before the winner that could not take
    # the slot (e.g. its health card already holds an appointment of that type).
    refused = models.JSONField(default=list)
    # A short code saying why (e.g. "earliest_filed", "slot_taken", "card_claimed").
    reason = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("outcome", Outcome), name="decision_outcome_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("trigger", Trigger), name="decision_trigger_valid"
            ),
            # The finder never gives a slot the public could not have taken at that moment.
            models.CheckConstraint(
                condition=~Q(outcome__in=["offered", "booked"]) | Q(slot_public=True),
                name="decision_gives_only_public_slots",
            ),
        ]
        indexes = [models.Index(fields=["clinic", "decided_at"], name="decision_clinic_idx")]

    def __str__(self) -> str:
        return f"match decision {self.pk}"


class AlertScope(models.TextChoices):
    CLINIC = "clinic", _("A clinic")
    PRACTITIONER = "practitioner", _("A practitioner")
    AREA = "area", _("An area")


class Alert(models.Model):
    """A free "alert me" entry: a message when a fitting slot is published or freed, with
    no hold (whoever books first gets it)."""

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="finder_alerts"
    )
    scope = models.CharField(max_length=12, choices=AlertScope.choices)
    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    practitioner = models.ForeignKey(
        "clinics.Practitioner",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
    )
    place_label = models.CharField(max_length=120, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    radius_km = models.PositiveSmallIntegerField(null=True, blank=True)
    # Empty: any type.
    appointment_type = models.CharField(max_length=20, choices=AppointmentType.choices, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField()
    # No second message within FINDER_ALERT_QUIET_MINUTES of the last one.
    last_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("scope", AlertScope), name="alert_scope_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    scope="clinic",
                    clinic__isnull=False,
                    practitioner__isnull=True,
                    latitude__isnull=True,
                )
                | Q(
                    scope="practitioner",
                    clinic__isnull=True,
                    practitioner__isnull=False,
                    latitude__isnull=True,
                )
                | Q(
                    scope="area",
                    clinic__isnull=True,
                    practitioner__isnull=True,
                    latitude__isnull=False,
                    longitude__isnull=False,
                    radius_km__gte=1,
                    radius_km__lte=200,
                ),
                name="alert_one_scope",
            ),
        ]
        indexes = [
            models.Index(fields=["scope"], condition=Q(is_active=True), name="alert_active_idx")
        ]

    def __str__(self) -> str:
        return f"alert {self.pk}"
