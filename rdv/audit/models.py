"""The audit log: append-only, each entry chained to the previous one by SHA-256.

DESIGN.md invariant 8. An entry is written in the transaction it records, without its
place in the chain; the sealer (services.seal_pending, run right after each commit and
by the worker) then gives it its `seq`, `prev_hash` and `hash`, in commit order. So
auditing never makes two unrelated transactions wait for each other: only the short
sealing step is serialised.

The database refuses any other change: an entry's content is never updated, its seal is
written once, and nothing is deleted (triggers: migrations 0002 and 0003).
`manage.py verify_audit` recomputes the chain and compares it with the anchors written
outside the database.
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
    # Position in the chain: 1, 2, 3… with no gap, NULL until sealed. Unique, so two
    # sealers can never fork the chain.
    seq = models.BigIntegerField(unique=True, null=True, blank=True)
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
    # NULL, not "", until sealed: "" would be a real value, and the unique hash would then
    # allow one unsealed entry at a time.
    prev_hash = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    hash = models.CharField(max_length=64, unique=True, null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient_id", "id"], name="audit_patient_id_idx"),
            models.Index(fields=["actor_id", "id"], name="audit_actor_id_idx"),
            # What the sealer reads: the few entries not yet in the chain.
            models.Index(fields=["id"], condition=Q(seq__isnull=True), name="audit_unsealed_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(seq__gte=1), name="audit_seq_positive"),
            # Sealed entirely or not at all.
            models.CheckConstraint(
                condition=Q(seq__isnull=True, prev_hash__isnull=True, hash__isnull=True)
                | Q(seq__isnull=False, prev_hash__isnull=False, hash__isnull=False),
                name="audit_seal_whole",
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=Outcome.values), name="audit_outcome_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"audit #{self.seq or '(unsealed)'} {self.action}"
