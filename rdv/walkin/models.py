"""Walk-in waves: N places per time window, given out first come, first served.

Invariants held by the database itself:
- a wave never gives out more places than its capacity: `taken` is a counter moved only
  by a compare-and-set (`UPDATE … SET taken = taken + 1 WHERE taken < capacity`), and a
  check constraint keeps 0 ≤ taken ≤ capacity whatever code runs;
- a place is given once per wave (unique (wave, place)) and numbered from 1, so the places
  of a wave are exactly 1..taken;
- a walk-in's status is one of its choices, and its timestamps agree with it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import EncryptedTextField, in_choices

CAPACITY_MAX = 200


class Wave(models.Model):
    """A window (e.g. 08:00–08:30) in which the clinic sees up to `capacity` walk-ins,
    with one practitioner or, when `practitioner` is empty, whoever is free."""

    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.PROTECT, related_name="walk_in_waves"
    )
    practitioner = models.ForeignKey(
        "clinics.Practitioner",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="walk_in_waves",
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    capacity = models.PositiveSmallIntegerField()
    # Places given out so far; only rdv.walkin.services.add_walk_in moves it.
    taken = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(end__gt=F("start")), name="wave_ends_after_start"),
            models.CheckConstraint(
                condition=Q(capacity__gte=1, capacity__lte=CAPACITY_MAX),
                name="wave_capacity_range",
            ),
            models.CheckConstraint(
                condition=Q(taken__gte=0, taken__lte=F("capacity")),
                name="wave_taken_within_capacity",
            ),
        ]
        indexes = [models.Index(fields=["clinic", "start"], name="wave_clinic_start_idx")]

    def __str__(self) -> str:
        return f"wave {self.pk}"

    @property
    def is_full(self) -> bool:
        return self.taken >= self.capacity

    @property
    def places_left(self) -> int:
        return max(0, self.capacity - self.taken)


class WalkInStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    CALLED = "called", _("Called")
    SEEN = "seen", _("Seen")
    LEFT = "left", _("Left")


class WalkIn(models.Model):
    """A person who came without an appointment and holds place `place` of a wave.

    Not a Patient: a walk-in is often nobody's account holder, and the front desk types
    only a name and maybe a phone. The names are plain columns as on Patient (the clinic
    calls people by them); the phone is health data (DESIGN.md invariant 7) and encrypted.
    """

    wave = models.ForeignKey(Wave, on_delete=models.PROTECT, related_name="walk_ins")
    place = models.PositiveSmallIntegerField()
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    phone = EncryptedTextField(blank=True)
    status = models.CharField(
        max_length=10, choices=WalkInStatus.choices, default=WalkInStatus.WAITING
    )
    arrived_at = models.DateTimeField()
    called_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["wave", "place"], name="walkin_one_per_place"),
            models.CheckConstraint(condition=Q(place__gte=1), name="walkin_place_positive"),
            models.CheckConstraint(
                condition=in_choices("status", WalkInStatus), name="walkin_status_valid"
            ),
            # Waiting: neither called nor done; called: called, not done; seen: both;
            # left: done (called or not).
            models.CheckConstraint(
                condition=(
                    Q(status="waiting", called_at__isnull=True, done_at__isnull=True)
                    | Q(status="called", called_at__isnull=False, done_at__isnull=True)
                    | Q(status="seen", called_at__isnull=False, done_at__isnull=False)
                    | Q(status="left", done_at__isnull=False)
                ),
                name="walkin_times_match_status",
            ),
        ]

    def __str__(self) -> str:
        return f"walk-in {self.pk}"
