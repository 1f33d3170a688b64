"""Continuity: the read-only switch an operator turns on during an incident."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ReadOnlySwitch(models.Model):
    """One row (id 1): whether the platform refuses every write, and why.

    Changed only through rdv.continuity.readonly (audited). The READ_ONLY environment
    variable forces the mode on whatever this row says.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    enabled = models.BooleanField(default=False)
    # Shown to no one but staff and the operator: the banner carries a fixed message.
    reason = models.CharField(max_length=300, blank=True)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="read_only_switch_single_row"),
        ]

    def __str__(self) -> str:
        return "read-only" if self.enabled else "read-write"
