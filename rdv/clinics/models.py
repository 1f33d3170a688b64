from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Clinic(models.Model):
    class Kind(models.TextChoices):
        GMF = "gmf", _("Family medicine group (GMF)")
        CLSC = "clsc", _("CLSC")
        WALK_IN = "walk_in", _("Walk-in clinic")
        PRIVATE = "private", _("Private clinic")

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    municipality_geonameid = models.IntegerField()
    municipality_name = models.CharField(max_length=120)
    address = models.CharField(max_length=250, blank=True)
    postal_code = models.CharField(max_length=7, blank=True)
    phone = models.CharField(max_length=20, blank=True)
    latitude = models.FloatField()
    longitude = models.FloatField()
    cancellation_cutoff_hours = models.PositiveSmallIntegerField(
        default=24, help_text="Patients cannot cancel or move online closer than this."
    )
    # Reminders go this many days before the visit, at its local time of day (0: none).
    first_reminder_days = models.PositiveSmallIntegerField(default=3)
    second_reminder_days = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["latitude", "longitude"], name="clinic_lat_lon_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(latitude__gte=-90, latitude__lte=90)
                & Q(longitude__gte=-180, longitude__lte=180),
                name="clinic_coordinates_valid",
            ),
            models.CheckConstraint(
                condition=Q(first_reminder_days__lte=14) & Q(second_reminder_days__lte=14),
                name="clinic_reminder_days_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Practitioner(models.Model):
    class Profession(models.TextChoices):
        FAMILY_DOCTOR = "family_doctor", _("Family doctor")
        NURSE_PRACTITIONER = "nurse_practitioner", _("Nurse practitioner (IPS)")
        NURSE = "nurse", _("Nurse")

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="practitioners")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    profession = models.CharField(max_length=20, choices=Profession.choices)
    accepting_new_patients = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        if self.profession == self.Profession.FAMILY_DOCTOR:
            return f"Dr {self.first_name} {self.last_name}"
        return f"{self.first_name} {self.last_name}"


class PractitionerLanguage(models.Model):
    """A language a practitioner can consult in (ISO 639-1 code)."""

    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, related_name="languages"
    )
    code = models.CharField(max_length=2)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner", "code"], name="practitioner_language_unique"
            ),
            models.CheckConstraint(
                condition=Q(code__regex=r"^[a-z]{2}$"), name="practitioner_language_iso"
            ),
        ]
        indexes = [models.Index(fields=["code", "practitioner"], name="practitioner_lang_idx")]

    def __str__(self) -> str:
        return self.code


class Membership(models.Model):
    """A user's role at one clinic. Staff can belong to several clinics."""

    class Role(models.TextChoices):
        CLINIC_ADMIN = "clinic_admin", _("Clinic administrator")
        RECEPTIONIST = "receptionist", _("Receptionist")
        PRACTITIONER = "practitioner", _("Practitioner")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} @ {self.clinic_id}"
