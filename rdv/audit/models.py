"""The audit log: append-only, each entry chained to the previous one by SHA-256.

DESIGN.md invariant 8. Entries are never updated or deleted (a PostgreSQL trigger refuses
both; see migration 0002); `manage.py verify_audit` recomputes the chain and compares it
with the anchors written outside the database.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Outcome(models.TextChoices):
    SUCCESS = "success", _("Success")
    FAILURE = "failure", _("Failure")
    DENIED = "denied", _("Denied")


class AuditEntry(models.Model):
    # Position in the chain: 1, 2, 3… with no gap. Unique, so two appends can never fork it.
    seq = models.BigIntegerField(unique=True)
    occurred_at = models.DateTimeField()
    # Plain ids, not foreign keys: deleting a user must never touch (update) the log.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_role = models.CharField(max_length=20)
    clinic_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=40, blank=True)
    patient_id = models.BigIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    request_id = models.CharField(max_length=40, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient_id", "seq"], name="audit_patient_idx"),
            models.Index(fields=["actor_id", "seq"], name="audit_actor_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(seq__gte=1), name="audit_seq_positive"),
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values), name="audit_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"audit #{self.seq} {self.action}"
