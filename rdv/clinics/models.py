from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import in_choices


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
    # How the clinic's notifications present themselves: the name shown beside our sending
    # address (empty: the clinic's name) and where a patient's reply goes (empty: nowhere).
    sender_name = models.CharField(max_length=80, blank=True)
    reply_to_email = models.EmailField(blank=True)
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


class StaffRole(models.TextChoices):
    CLINIC_ADMIN = "clinic_admin", _("Clinic administrator")
    RECEPTIONIST = "receptionist", _("Receptionist")
    PRACTITIONER = "practitioner", _("Practitioner")


class Membership(models.Model):
    """A user's role at one clinic. Staff can belong to several clinics."""

    Role = StaffRole

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    # The practitioner this member is, for "my day" and "my registered patients". Same
    # clinic as the membership (checked by rdv.clinics.staff, which alone writes it).
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="memberships",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="membership_unique"),
            models.CheckConstraint(
                condition=in_choices("role", StaffRole), name="membership_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(practitioner__isnull=True) | Q(role="practitioner"),
                name="membership_practitioner_only_for_practitioners",
            ),
            models.UniqueConstraint(
                fields=["practitioner"],
                condition=Q(practitioner__isnull=False),
                name="membership_one_account_per_practitioner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} @ {self.clinic_id}"


# The roles that book, move and cancel for patients and handle walk-ins (not practitioners).
FRONT_DESK_ROLES = (StaffRole.CLINIC_ADMIN, StaffRole.RECEPTIONIST)


class StaffInvitation(models.Model):
    """An invitation to join a clinic's staff, sent by email with a one-time link.

    Only the SHA-256 of the link's secret is stored. Accepting needs an account with a
    second factor enrolled (the portal refuses sessions without one anyway); the
    membership is created then, with the role chosen here.
    """

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=StaffRole.choices)
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_choices("role", StaffRole), name="invitation_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(practitioner__isnull=True) | Q(role="practitioner"),
                name="invitation_practitioner_only_for_practitioners",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="invitation_expires_after"
            ),
            # Accepted or revoked, never both.
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(accepted_by__isnull=False),
                name="invitation_accepted_by_someone",
            ),
            # One open invitation per address and clinic: a new one revokes the old.
            models.UniqueConstraint(
                fields=["clinic", "email"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation {self.pk} to clinic {self.clinic_id}"
