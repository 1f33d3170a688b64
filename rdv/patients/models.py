from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import EncryptedDateField, EncryptedTextField


class Patient(models.Model):
    """A person who can be seen: the account holder or someone they book for.

    `account` is the user who manages this patient. A child has no login of their own.

    Health data (DESIGN.md invariant 7) is encrypted in its column: the date of birth, the
    health-insurance (RAMQ) number and the card's sequence number, and the phone. The RAMQ
    number is found again through `ramq_blind_index` (rdv.patients.ramq), never by value.
    Only rdv.patients.services.set_health_card writes the health-card fields.

    A dependant removed by the account holder after they have been seen is not deleted:
    clinics' records refer to them (retention). `archived_at` is then set, and they no
    longer appear among the people the account books for; with no appointment at all, the
    row is deleted instead (rdv.patients.services.remove_dependant).
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
    # The RAMQ number is built from the surname at birth; empty means "same as last_name".
    last_name_at_birth = models.CharField(max_length=100, blank=True)
    date_of_birth = EncryptedDateField()
    phone = EncryptedTextField(blank=True)
    ramq_number = EncryptedTextField(blank=True)
    # HMAC of the normalised RAMQ number: equality lookups without decrypting anything.
    ramq_blind_index = models.CharField(max_length=64, blank=True, db_index=True)
    # The card's 2-digit "numéro séquentiel" (which copy of the card this is).
    card_sequence_number = EncryptedTextField(blank=True)
    family_doctor = models.ForeignKey(
        "clinics.Practitioner",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="registered_patients",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # The account holder is never archived: they leave by deleting the account.
            models.CheckConstraint(
                condition=Q(archived_at__isnull=True) | ~Q(relationship="self"),
                name="patient_self_never_archived",
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(relationship="self"),
                name="patient_one_self_per_account",
            ),
        ]

    def __str__(self) -> str:
        return f"patient {self.pk}"
