"""Availability rules, materialised slots, and appointments (FHIR: Schedule → Slot → Appointment).

Invariants held by the database itself (DESIGN.md 1–4):
- at most one active appointment per slot (partial unique index);
- a practitioner's slots never overlap (exclusion constraint on PostgreSQL, triggers on
  SQLite; see migration 0002);
- one held slot per account at a time (partial unique index);
- every status is one of its choices (check constraints).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.deletion import Collector
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import EncryptedTextField, in_choices


class AppointmentType(models.TextChoices):
    URGENT = "urgent", _("Urgent (within 24 to 48 hours)")
    PRIORITY = "priority", _("Priority (within 7 days)")
    FOLLOW_UP = "follow_up", _("Follow-up")
    PERIODIC = "periodic", _("Periodic check-up")
    PREGNANCY = "pregnancy", _("Pregnancy follow-up")
    CHILD_0_5 = "child_0_5", _("Child 0 to 5 years")


class Visibility(models.TextChoices):
    PUBLIC = "public", _("Open to the public")
    REGISTERED = "registered", _("Reserved for the practitioner's registered patients")


class SlotStatus(models.TextChoices):
    FREE = "free", _("Free")
    BOOKED = "booked", _("Booked")
    # No longer offered (its rule changed or a closure covers it) but kept because an
    # appointment, cancelled, still refers to it. Ignored by the overlap constraints.
    WITHDRAWN = "withdrawn", _("Withdrawn")


class AppointmentStatus(models.TextChoices):
    """FHIR Appointment.status values used in primary care."""

    BOOKED = "booked", _("Booked")
    ARRIVED = "arrived", _("Arrived")
    FULFILLED = "fulfilled", _("Fulfilled")
    CANCELLED = "cancelled", _("Cancelled")
    NOSHOW = "noshow", _("No-show")


class CancelledBy(models.TextChoices):
    PATIENT = "patient", _("The patient")
    CLINIC = "clinic", _("The clinic")


# Statuses that occupy the slot: only a cancellation gives it back.
ACTIVE_APPOINTMENT_STATUSES = ("booked", "arrived", "fulfilled", "noshow")


class AvailabilityRule(models.Model):
    """A weekly template: every `weekday`, from `start_time` to `end_time` local wall-clock
    time, slots of `slot_minutes`, between `valid_from` and `valid_until` (inclusive)."""

    practitioner = models.ForeignKey(
        "clinics.Practitioner", on_delete=models.CASCADE, related_name="availability_rules"
    )
    weekday = models.PositiveSmallIntegerField(help_text="0 = Monday … 6 = Sunday")
    start_time = models.TimeField()
    end_time = models.TimeField()
    slot_minutes = models.PositiveSmallIntegerField()
    appointment_type = models.CharField(max_length=20, choices=AppointmentType.choices)
    visibility = models.CharField(
        max_length=12, choices=Visibility.choices, default=Visibility.PUBLIC
    )
    # Release rule for reserved slots: still free this many hours before they start, they
    # open to the public. Empty: they stay reserved.
    release_hours = models.PositiveSmallIntegerField(null=True, blank=True)
    valid_from = models.DateField()
    valid_until = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(weekday__lte=6), name="rule_weekday_valid"),
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")), name="rule_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(slot_minutes__gte=5, slot_minutes__lte=480),
                name="rule_slot_minutes_range",
            ),
            models.CheckConstraint(
                condition=Q(valid_until__isnull=True) | Q(valid_until__gte=F("valid_from")),
                name="rule_validity_ordered",
            ),
            models.CheckConstraint(
                condition=in_choices("appointment_type", AppointmentType),
                name="rule_type_valid",
            ),
            models.CheckConstraint(
                condition=in_choices("visibility", Visibility), name="rule_visibility_valid"
            ),
            models.CheckConstraint(
                condition=Q(release_hours__isnull=True)
                | Q(visibility="registered", release_hours__gte=1, release_hours__lte=336),
                name="rule_release_only_reserved",
            ),
        ]

    def __str__(self) -> str:
        return f"rule {self.pk} of practitioner {self.practitioner_id}"


class Closure(models.Model):
    """A period with no slots: a whole clinic (practitioner empty) or one practitioner."""

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.CASCADE, related_name="closures")
    practitioner = models.ForeignKey(
        "clinics.Practitioner",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="closures",
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="closure_ends_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"closure {self.pk}"


def release_hold(
    collector: Collector, field: models.Field[Any, Any], sub_objs: Any, using: str
) -> None:
    """on_delete for the hold's owner: release the whole hold in one UPDATE, so the slot
    never keeps an expiry without an owner (check constraint slot_hold_complete; Django's
    own SET_NULL would write the columns one statement at a time). Releasing a hold is
    harmless even if the deletion then fails."""
    pks = [obj.pk for obj in sub_objs]
    field.model._base_manager.using(using).filter(pk__in=pks).update(
        hold_owner=None, hold_visitor=None, hold_expires_at=None
    )


class Slot(models.Model):
    """A bookable period of one practitioner, materialised from the rules.

    `status` is free or booked and only ever changes by compare-and-set (services.py).
    A hold is (hold_owner or hold_visitor, hold_expires_at) on the slot itself, so taking
    a hold and booking are single-row updates; an expired hold simply stops counting.
    """

    Status = SlotStatus

    # Indexed below together with `start`; a lone clinic_id index would only mislead the planner.
    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.PROTECT, related_name="slots", db_index=False
    )
    practitioner = models.ForeignKey(
        "clinics.Practitioner", on_delete=models.PROTECT, related_name="slots"
    )
    rule = models.ForeignKey(
        AvailabilityRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="slots"
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    appointment_type = models.CharField(max_length=20, choices=AppointmentType.choices)
    visibility = models.CharField(max_length=12, choices=Visibility.choices)
    # A reserved slot still free at this instant is open to the public (its rule's
    # release_hours before `start`); NULL: reserved until it starts.
    public_from = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.FREE)
    hold_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=release_hold,
        null=True,
        blank=True,
        related_name="held_slots",
    )
    # A visitor who is not signed in yet holds a slot by a random token kept in their
    # session; this is its SHA-256, so the table alone cannot be used to take it over.
    # NULL, not "": the partial unique index and the check constraint test for NULL.
    hold_visitor = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hold_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="slot_ends_after_start"),
            models.UniqueConstraint(
                fields=["practitioner", "start"],
                condition=~Q(status="withdrawn"),
                name="slot_practitioner_start",
            ),
            models.UniqueConstraint(
                fields=["hold_owner"],
                condition=Q(hold_owner__isnull=False),
                name="slot_one_hold_per_account",
            ),
            models.UniqueConstraint(
                fields=["hold_visitor"],
                condition=Q(hold_visitor__isnull=False),
                name="slot_one_hold_per_visitor",
            ),
            # A hold belongs to an account or to a visitor, never both, and always expires.
            models.CheckConstraint(
                condition=Q(
                    hold_owner__isnull=True,
                    hold_visitor__isnull=True,
                    hold_expires_at__isnull=True,
                )
                | Q(
                    hold_owner__isnull=False,
                    hold_visitor__isnull=True,
                    hold_expires_at__isnull=False,
                )
                | Q(
                    hold_owner__isnull=True,
                    hold_visitor__isnull=False,
                    hold_expires_at__isnull=False,
                ),
                name="slot_hold_complete",
            ),
            models.CheckConstraint(
                condition=in_choices("status", SlotStatus), name="slot_status_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("appointment_type", AppointmentType),
                name="slot_type_valid",
            ),
            models.CheckConstraint(
                condition=in_choices("visibility", Visibility), name="slot_visibility_valid"
            ),
            models.CheckConstraint(
                condition=Q(public_from__isnull=True)
                | Q(visibility="registered", public_from__lt=F("start")),
                name="slot_public_from_only_reserved",
            ),
        ]
        indexes = [
            # The search path: one small range scan per nearby clinic, already in the
            # order results are given (start, then id), so no sort is needed.
            models.Index(
                fields=["clinic", "start", "id"],
                condition=Q(status="free"),
                name="slot_free_clinic_start_idx",
            ),
            # A clinic's agenda, whatever the status.
            models.Index(fields=["clinic", "start"], name="slot_clinic_start_idx"),
        ]

    def __str__(self) -> str:
        return f"slot {self.pk}"


class Appointment(models.Model):
    Status = AppointmentStatus

    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="appointments"
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="booked_appointments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.BOOKED)
    # Free text about one's health: encrypted (DESIGN.md invariant 7).
    reason = EncryptedTextField(blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The patient said they will come (the "confirm" link of a reminder).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = EncryptedTextField(max_length=500, blank=True)
    # Who cancelled: the patient's side (pages, links, account deletion) or the clinic.
    cancelled_by = models.CharField(max_length=10, choices=CancelledBy.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["slot"],
                condition=Q(status__in=ACTIVE_APPOINTMENT_STATUSES),
                name="appointment_one_active_per_slot",
            ),
            models.CheckConstraint(
                condition=in_choices("status", AppointmentStatus),
                name="appointment_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False)
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True)),
                name="appointment_cancelled_at_iff_cancelled",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_by__in=CancelledBy.values)
                | (~Q(status="cancelled") & Q(cancelled_by="")),
                name="appointment_cancelled_by_iff_cancelled",
            ),
        ]
        indexes = [models.Index(fields=["patient", "status"], name="appointment_patient_idx")]

    def __str__(self) -> str:
        return f"appointment {self.pk}"


class CardClaim(models.Model):
    """An upcoming appointment held against a health card, one per card and type.

    The unique constraint is the anti-hoarding rule itself: however many accounts a bot
    opens, one health-insurance number holds at most one upcoming appointment of a type.
    A claim is released on cancellation, and counts no more once its visit has ended.
    """

    ramq_blind_index = models.CharField(max_length=64)
    appointment_type = models.CharField(max_length=20, choices=AppointmentType.choices)
    appointment = models.OneToOneField(
        Appointment, on_delete=models.CASCADE, related_name="card_claim"
    )
    ends_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ramq_blind_index", "appointment_type"], name="card_claim_one_per_type"
            ),
        ]

    def __str__(self) -> str:
        return f"claim of appointment {self.appointment_id}"
