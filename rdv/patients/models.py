from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import EncryptedDateField, EncryptedTextField
from rdv.patients.identity import identity_index

if TYPE_CHECKING:
    from rdv.clinics.models import Clinic


def reachable_by(clinic: Clinic) -> Q:
    """The people a clinic's front desk may find and book for a caller: those of an open
    account (any clinic may, as they would book online), and this clinic's own files of
    callers without an account (never another clinic's)."""
    return Q(account__is_active=True) | Q(record_clinic=clinic)


class Patient(models.Model):
    """A person who can be seen: the account holder or someone they book for.

    `account` is the user who manages this patient. A child has no login of their own.
    A caller without an account (many elderly patients will never have one) has a file
    created by the clinic they phoned instead: no `account`, `record_clinic` set, always
    "self". Exactly one of the two is set (a check constraint). Such a file is that
    clinic's alone: only its staff find or book it (reachable_by); the patient pages never
    see it, and its messages go by text to its `phone` (rdv.notifications.services)
    unless that number answered STOP (`sms_stopped`).

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
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="patients",
    )
    # The clinic that created this file for a caller without an account.
    record_clinic = models.ForeignKey(
        "clinics.Clinic",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="caller_records",
    )
    # A file without an account: its phone answered STOP, so no more text messages to it.
    sms_stopped = models.BooleanField(default=False)
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
    # HMAC of the normalised surname and the date of birth: a caller without their card is
    # found by name and birth date although the date is encrypted. Kept by save().
    identity_blind_index = models.CharField(max_length=64, blank=True, db_index=True)
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
            # Someone's account, or one clinic's file for a caller without one: never both,
            # never neither.
            models.CheckConstraint(
                condition=Q(account__isnull=False, record_clinic__isnull=True)
                | Q(account__isnull=True, record_clinic__isnull=False),
                name="patient_account_or_clinic_record",
            ),
            models.CheckConstraint(
                condition=Q(record_clinic__isnull=True) | Q(relationship="self"),
                name="patient_clinic_record_is_self",
            ),
            # One file per health card per clinic (the front desk searches before creating).
            models.UniqueConstraint(
                fields=["record_clinic", "ramq_blind_index"],
                condition=Q(record_clinic__isnull=False) & ~Q(ramq_blind_index=""),
                name="patient_one_record_per_card_per_clinic",
            ),
        ]

    def __str__(self) -> str:
        return f"patient {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Keep identity_blind_index in step with the surname and date of birth, whichever
        service writes them (a partial save of either also writes the index)."""
        self.identity_blind_index = identity_index(self.last_name, self.date_of_birth)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"last_name", "date_of_birth"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "identity_blind_index"}
        super().save(*args, **kwargs)
