from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Patient(models.Model):
    """A person who can be seen: the account holder or someone they book for.

    `account` is the user who manages this patient. A child has no login of their own.
    """

    class Relationship(models.TextChoices):
        SELF = "self", _("Myself")
        CHILD = "child", _("Child")
        OTHER = "other", _("Other family member")

    account = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="patients"
    )
    relationship = models.CharField(max_length=10, choices=Relationship.choices)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    date_of_birth = models.DateField()
    family_doctor = models.ForeignKey(
        "clinics.Practitioner",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="registered_patients",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(relationship="self"),
                name="patient_one_self_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"patient {self.pk}"
