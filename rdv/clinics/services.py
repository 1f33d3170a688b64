"""What clinic staff do with patient data. Every read of a patient's data is audited.

All of it goes through a StaffContext (rdv.clinics.queries.staff_context), so nothing
here can reach another clinic's objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.cache import cache
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from rdv.audit import services as audit
from rdv.clinics.models import Clinic, Membership, Practitioner, PractitionerLanguage
from rdv.clinics.queries import StaffContext
from rdv.clinics.sender import clean_reply_to, clean_sender_name
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied, ValidationError
from rdv.patients.identity import identity_index
from rdv.patients.models import Patient, reachable_by
from rdv.patients.queries import patients_with_ramq
from rdv.patients.ramq import check_ramq_format, ramq_letters
from rdv.patients.services import check_date_of_birth
from rdv.scheduling import queries
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, AppointmentStatus, AvailabilityRule


def audit_staff_action(
    ctx: StaffContext,
    action: str,
    object_type: str,
    object_id: object,
    *,
    patient_id: int | None = None,
) -> None:
    """One audit entry for something a staff member did at their clinic: the member, their
    role and the clinic are always recorded the same way."""
    audit.record(
        action,
        actor=ctx.user,
        role=ctx.role,
        subject=audit.Subject(
            object_type=object_type,
            object_id=str(object_id),
            patient_id=patient_id,
            clinic_id=ctx.clinic.pk,
        ),
    )


def audit_view(
    ctx: StaffContext, action: str, patient_id: int, object_type: str, object_id: int
) -> None:
    audit_staff_action(ctx, action, object_type, object_id, patient_id=patient_id)


def view_day(
    ctx: StaffContext, day: date, *, practitioner_id: int | None = None
) -> list[Appointment]:
    """The clinic's appointments of one local day (one practitioner's, if given); one audit
    entry per patient shown."""
    with transaction.atomic():
        found = queries.clinic_day(ctx, day)
        if practitioner_id is not None:
            found = found.filter(slot__practitioner_id=practitioner_id)
        appointments = list(found)
        for appointment in appointments:
            if _first_sight_in_window(ctx, appointment.pk):
                audit_view(
                    ctx, "agenda.view", appointment.patient_id, "appointment", appointment.pk
                )
    return appointments


AGENDA_AUDIT_WINDOW_SECONDS = 30 * 60


def _first_sight_in_window(ctx: StaffContext, appointment_id: int) -> bool:
    """Whether this staff member's agenda shows this appointment for the first time in
    the current half-hour. The agenda refreshes itself every 20 s: logging every refresh
    would bury each patient's "who viewed my file" under identical lines. The window is
    counted on the project's clock; the marks live in the cache, so losing it only means
    logging again (more, never less)."""
    window = int(clock.now().timestamp()) // AGENDA_AUDIT_WINDOW_SECONDS
    key = f"rdv.agenda-seen:{ctx.user.pk}:{ctx.clinic.pk}:{appointment_id}:{window}"
    return bool(cache.add(key, 1, timeout=AGENDA_AUDIT_WINDOW_SECONDS))


def view_appointment(ctx: StaffContext, appointment_id: int) -> Appointment:
    with transaction.atomic():
        appointment = queries.clinic_appointment(ctx, appointment_id)
        audit_view(ctx, "appointment.view", appointment.patient_id, "appointment", appointment.pk)
    return appointment


def view_patient(ctx: StaffContext, patient_id: int) -> Patient:
    with transaction.atomic():
        patient = queries.clinic_patient(ctx, patient_id)
        audit_view(ctx, "patient.view", patient.pk, "patient", patient.pk)
    return patient


# --- Practitioners (clinic administrators) ------------------------------------------------

NAME_MAX_LENGTH = 100
# The languages a practitioner can be listed as consulting in (ISO 639-1), each named in
# itself: the most spoken in Quebec after French and English (Statistics Canada, 2021).
PRACTITIONER_LANGUAGES = {
    "fr": "Français",
    "en": "English",
    "ar": "العربية",
    "es": "Español",
    "it": "Italiano",
    "ht": "Kreyòl ayisyen",
    "zh": "中文",
    "pt": "Português",
    "vi": "Tiếng Việt",
    "fa": "فارسی",
    "ru": "Русский",
    "ro": "Română",
    "el": "Ελληνικά",
    "tl": "Tagalog",
}


@dataclass(frozen=True)
class PractitionerDetails:
    """What a clinic administrator sees of one practitioner."""

    practitioner: Practitioner
    languages: list[str]
    rules: list[AvailabilityRule]
    booked_ahead: int


@dataclass(frozen=True)
class PractitionerChange:
    practitioner: Practitioner
    deactivated: bool
    reactivated: bool
    # Upcoming booked appointments still with them: the clinic must honour or cancel them.
    booked_ahead: int


def _clean_name(value: str, field: str) -> str:
    cleaned = " ".join(value.split())
    if not cleaned:
        raise ValidationError(_("This field is required."), field=field, code="required")
    if len(cleaned) > NAME_MAX_LENGTH:
        raise ValidationError(
            _("Ensure this value has at most 100 characters."), field=field, code="too_long"
        )
    return cleaned


def _checked_languages(languages: list[str]) -> list[str]:
    codes = list(dict.fromkeys(languages))
    if not codes:
        raise ValidationError(
            _("Choose at least one language the practitioner consults in."),
            field="languages",
            code="languages_required",
        )
    if any(code not in PRACTITIONER_LANGUAGES for code in codes):
        raise ValidationError(
            _("Choose the languages from the list."), field="languages", code="languages"
        )
    return codes


def _booked_ahead(practitioner: Practitioner) -> int:
    return Appointment.objects.filter(
        slot__practitioner=practitioner,
        status=AppointmentStatus.BOOKED,
        slot__start__gt=clock.now(),
    ).count()


def _practitioner_changed(ctx: StaffContext, action: str, practitioner: Practitioner) -> None:
    audit_staff_action(ctx, action, "practitioner", practitioner.pk)


def practitioners_of(ctx: StaffContext) -> list[Practitioner]:
    """The clinic's practitioners, active ones first, by name (administrators only)."""
    scheduling.require_clinic_admin(ctx)
    return list(
        ctx.clinic.practitioners.prefetch_related("languages").order_by(
            "-is_active", "last_name", "first_name", "pk"
        )
    )


def practitioner_details(ctx: StaffContext, practitioner_id: int) -> PractitionerDetails:
    """One of the clinic's practitioners with their languages and weekly times (another
    clinic's: NotFound, whatever the role)."""
    practitioner = scheduling.admin_practitioner(ctx, practitioner_id)
    return PractitionerDetails(
        practitioner=practitioner,
        languages=sorted(practitioner.languages.values_list("code", flat=True)),
        rules=list(
            practitioner.availability_rules.order_by("weekday", "start_time", "valid_from", "pk")
        ),
        booked_ahead=_booked_ahead(practitioner),
    )


def add_practitioner(
    ctx: StaffContext,
    *,
    first_name: str,
    last_name: str,
    profession: str,
    languages: list[str],
    accepting_new_patients: bool,
) -> Practitioner:
    """Add an active practitioner to the administrator's clinic, with their languages.

    Everything is checked before anything is written; the practitioner, their languages
    and the audit entry are one transaction. They have no slot until a weekly time is
    added.
    """
    scheduling.require_clinic_admin(ctx)
    first = _clean_name(first_name, "first_name")
    last = _clean_name(last_name, "last_name")
    if profession not in Practitioner.Profession.values:
        raise ValidationError(
            _("Choose a profession from the list."), field="profession", code="profession"
        )
    codes = _checked_languages(languages)
    with transaction.atomic():
        practitioner = Practitioner.objects.create(
            clinic=ctx.clinic,
            first_name=first,
            last_name=last,
            profession=profession,
            accepting_new_patients=accepting_new_patients,
        )
        PractitionerLanguage.objects.bulk_create(
            PractitionerLanguage(practitioner=practitioner, code=code) for code in codes
        )
        _practitioner_changed(ctx, "practitioner.add", practitioner)
    return practitioner


def update_practitioner(
    ctx: StaffContext,
    practitioner_id: int,
    *,
    is_active: bool,
    accepting_new_patients: bool,
    languages: list[str],
) -> PractitionerChange:
    """Activate or deactivate a practitioner, and set whether they take new patients and
    the languages they consult in.

    Deactivating withdraws their free slots (regenerated from today over the horizon, in
    the same transaction); booked appointments stay, and their number is returned so the
    clinic can honour or cancel them. Reactivating publishes their weekly times again.
    """
    with transaction.atomic():
        practitioner = scheduling.admin_practitioner(ctx, practitioner_id, lock=True)
        codes = _checked_languages(languages)
        was_active = practitioner.is_active
        practitioner.is_active = is_active
        practitioner.accepting_new_patients = accepting_new_patients
        practitioner.save(update_fields=["is_active", "accepting_new_patients"])
        practitioner.languages.exclude(code__in=codes).delete()
        known = set(practitioner.languages.values_list("code", flat=True))
        PractitionerLanguage.objects.bulk_create(
            PractitionerLanguage(practitioner=practitioner, code=code)
            for code in codes
            if code not in known
        )
        if was_active != is_active:
            scheduling.regenerate_horizon(practitioner.pk)
        _practitioner_changed(ctx, "practitioner.update", practitioner)
        booked_ahead = _booked_ahead(practitioner)
    return PractitionerChange(
        practitioner=practitioner,
        deactivated=was_active and not is_active,
        reactivated=is_active and not was_active,
        booked_ahead=booked_ahead,
    )


# --- A patient who phones the front desk --------------------------------------------------


def find_callers(ctx: StaffContext, ramq_number: str) -> list[Patient]:
    """The people holding this health insurance number on RDV Santé (a caller gives it over
    the phone): found through its blind index among those this clinic may book for
    (reachable_by: open accounts, and its own files), each find audited for that person."""
    if ctx.role == Membership.Role.PRACTITIONER:
        raise PermissionDenied(_("Only the front desk books for patients."), code="role")
    number = check_ramq_format(ramq_number)
    with transaction.atomic():
        people = list(
            patients_with_ramq(number)
            .filter(reachable_by(ctx.clinic), archived_at__isnull=True)
            .order_by("last_name", "first_name", "pk")
        )
        for person in people:
            audit_view(ctx, "patient.lookup", person.pk, "patient", person.pk)
    return people


def find_callers_by_identity(
    ctx: StaffContext, *, last_name: str, date_of_birth: date, first_name: str = ""
) -> list[Patient]:
    """A caller without their health card, found by surname and date of birth (through
    their blind index, the date being encrypted), narrowed by the first name's beginning
    when one is given. Each person found is audited as a look-up."""
    if ctx.role == Membership.Role.PRACTITIONER:
        raise PermissionDenied(_("Only the front desk books for patients."), code="role")
    born = check_date_of_birth(date_of_birth)
    key = identity_index(last_name, born)
    if not key:
        raise ValidationError(
            _("Enter the caller's surname."), field="last_name", code="last_name_required"
        )
    given = ramq_letters(first_name)
    with transaction.atomic():
        people = [
            person
            for person in Patient.objects.filter(
                reachable_by(ctx.clinic), identity_blind_index=key, archived_at__isnull=True
            ).order_by("last_name", "first_name", "pk")
            if ramq_letters(person.first_name).startswith(given)
        ]
        for person in people:
            audit_view(ctx, "patient.lookup", person.pk, "patient", person.pk)
    return people


def view_caller(ctx: StaffContext, patient_id: int) -> Patient:
    """The caller found moments ago (the portal carries them in a signed token), read
    again for the next step; an audited view."""
    with transaction.atomic():
        patient = Patient.objects.filter(
            reachable_by(ctx.clinic), pk=patient_id, archived_at__isnull=True
        ).first()
        if patient is None:
            raise NotFound(_("Patient not found."), code="patient_not_found")
        audit_view(ctx, "patient.view", patient.pk, "patient", patient.pk)
    return patient


# --- The clinic's settings (clinic administrators) ----------------------------------------

CUTOFF_HOURS_MAX = 168  # a week
REMINDER_DAYS_MAX = 14  # the check constraint clinic_reminder_days_valid


def _check_bounds(value: int, field: str, high: int, message: str) -> None:
    if not 0 <= value <= high:
        raise ValidationError(message % {"max": high}, field=field, code=field)


def update_clinic_settings(
    ctx: StaffContext,
    *,
    cancellation_cutoff_hours: int,
    first_reminder_days: int,
    second_reminder_days: int,
    sender_name: str | None = None,
    reply_to_email: str | None = None,
) -> Clinic:
    """Set how close to a visit patients may still cancel or move it online (0–168 hours)
    and how many days before it the two reminders go (0–14 days, 0: none); and, when
    given, the name the clinic's messages go out under and where replies go
    (rdv.clinics.sender: a name that could inject an email header is refused).

    Reminder days apply to bookings made afterwards: reminders already queued keep their
    time (patients were told of them when they booked). One transaction with its audit
    entry; administrators only.
    """
    if ctx.role != Membership.Role.CLINIC_ADMIN:
        raise PermissionDenied(
            _("Only the clinic's administrators can change its settings."), code="role"
        )
    hours_message = str(_("Choose a number of hours from 0 to %(max)d."))
    days_message = str(_("Choose a number of days from 0 to %(max)d."))
    _check_bounds(
        cancellation_cutoff_hours, "cancellation_cutoff_hours", CUTOFF_HOURS_MAX, hours_message
    )
    _check_bounds(first_reminder_days, "first_reminder_days", REMINDER_DAYS_MAX, days_message)
    _check_bounds(second_reminder_days, "second_reminder_days", REMINDER_DAYS_MAX, days_message)
    fields: dict[str, int | str] = {
        "cancellation_cutoff_hours": cancellation_cutoff_hours,
        "first_reminder_days": first_reminder_days,
        "second_reminder_days": second_reminder_days,
    }
    if sender_name is not None:
        fields["sender_name"] = clean_sender_name(sender_name)
    if reply_to_email is not None:
        fields["reply_to_email"] = clean_reply_to(reply_to_email)
    with transaction.atomic():
        clinic = Clinic.objects.select_for_update().get(pk=ctx.clinic.pk)
        for name, value in fields.items():
            setattr(clinic, name, value)
        clinic.save(update_fields=list(fields))
        audit.record(
            "clinic.settings",
            actor=ctx.user,
            role=ctx.role,
            subject=audit.Subject(
                object_type="clinic", object_id=str(clinic.pk), clinic_id=clinic.pk
            ),
        )
    return clinic
