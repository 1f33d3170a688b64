"""The agenda beyond one day: a week of appointments, a practitioner's own day, and the
patients registered with a practitioner. Every patient shown is an audited read, through
rdv.clinics.services (the day view's audit, with its half-hour window for pages that
refresh themselves).

Everything goes through a StaffContext: another clinic's practitioner is NotFound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import FRONT_DESK_ROLES, Membership, Practitioner
from rdv.clinics.queries import StaffContext
from rdv.clinics.services import audit_view, view_day
from rdv.core import clock
from rdv.core.errors import NotFound, PermissionDenied
from rdv.patients.models import Patient
from rdv.patients.queries import FAMILY_DOCTOR_PROFESSIONS
from rdv.patients.services import phone_for_display
from rdv.scheduling.models import Appointment, AppointmentStatus

WEEK_DAYS = 7
REGISTERED_PAGE_SIZE = 50
# A visit counts as "last visit" once the patient came; "next visit" while it is to come.
CAME = (AppointmentStatus.ARRIVED, AppointmentStatus.FULFILLED)
TO_COME = (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED)


@dataclass(frozen=True)
class AgendaDay:
    day: date
    appointments: list[Appointment]


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def view_week(
    ctx: StaffContext, first_day: date, *, practitioner_id: int | None = None
) -> list[AgendaDay]:
    """Seven local days of the clinic's appointments from `first_day` (one practitioner's,
    if given), day by day: each day read and audited exactly as the day view reads it."""
    days = [first_day + timedelta(days=offset) for offset in range(WEEK_DAYS)]
    return [
        AgendaDay(day=day, appointments=view_day(ctx, day, practitioner_id=practitioner_id))
        for day in days
    ]


def linked_practitioner(ctx: StaffContext) -> Practitioner | None:
    """The practitioner this member is at this clinic (set by the clinic's administrator),
    or None: another role, or a practitioner's account not linked yet."""
    membership = (
        Membership.objects.select_related("practitioner")
        .filter(user=ctx.user, clinic=ctx.clinic, practitioner__clinic=ctx.clinic)
        .first()
    )
    return membership.practitioner if membership is not None else None


def clinic_practitioner(ctx: StaffContext, practitioner_id: int) -> Practitioner:
    """One of the clinic's practitioners (another clinic's, or none: NotFound)."""
    found = Practitioner.objects.filter(pk=practitioner_id, clinic=ctx.clinic).first()
    if found is None:
        raise NotFound(_("Practitioner not found."), code="practitioner_not_found")
    return found


def takes_registered_patients(practitioner: Practitioner) -> bool:
    return practitioner.profession in FAMILY_DOCTOR_PROFESSIONS


def family_doctors(ctx: StaffContext) -> list[tuple[Practitioner, int]]:
    """The clinic's practitioners who take registered patients, with how many they have;
    for the front desk."""
    _require_front_desk(ctx)
    doctors = list(
        Practitioner.objects.filter(clinic=ctx.clinic, profession__in=FAMILY_DOCTOR_PROFESSIONS)
        .annotate(
            registered=Count(
                "registered_patients",
                filter=Q(registered_patients__archived_at__isnull=True),
            )
        )
        .order_by("-is_active", "last_name", "first_name", "pk")
    )
    return [(doctor, doctor.registered) for doctor in doctors]


def _require_front_desk(ctx: StaffContext) -> None:
    if ctx.role not in FRONT_DESK_ROLES:
        raise PermissionDenied(
            _("Your role at this clinic does not give access to this page."), code="role"
        )


@dataclass(frozen=True)
class RegisteredPatient:
    patient: Patient
    age: int
    phone: str
    last_visit: datetime | None
    next_visit: datetime | None


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _visits(ctx: StaffContext, patient_ids: list[int]) -> dict[int, dict[str, datetime | None]]:
    """Each patient's last visit (they came) and next one (to come) at this clinic."""
    now = clock.now()
    rows = (
        Appointment.objects.filter(patient_id__in=patient_ids, slot__clinic=ctx.clinic)
        .values("patient_id")
        .annotate(
            last=Max("slot__start", filter=Q(status__in=CAME, slot__start__lt=now)),
            next=Min("slot__start", filter=Q(status__in=TO_COME, slot__end__gt=now)),
        )
    )
    return {row["patient_id"]: {"last": row["last"], "next": row["next"]} for row in rows}


@dataclass(frozen=True)
class RegisteredList:
    practitioner: Practitioner
    rows: list[RegisteredPatient]
    page: Page[Patient]  # which page of how many (its rows are `rows`)


def registered_patients(
    ctx: StaffContext, practitioner_id: int, *, page: str | int | None = 1
) -> RegisteredList:
    """One page of the patients registered with this practitioner of the clinic, by name:
    age, phone, and last and next visit here; one audit entry per patient shown.

    The front desk sees any of the clinic's practitioners' lists; a practitioner only
    their own. Another clinic's practitioner is NotFound, whatever the role.
    """
    practitioner = clinic_practitioner(ctx, practitioner_id)
    if ctx.role not in FRONT_DESK_ROLES:
        mine = linked_practitioner(ctx)
        if mine is None or mine.pk != practitioner.pk:
            _require_front_desk(ctx)
    everyone = Patient.objects.filter(
        family_doctor=practitioner, archived_at__isnull=True
    ).order_by("last_name", "first_name", "pk")
    today = clock.local_today()
    with transaction.atomic():
        shown = Paginator(everyone, REGISTERED_PAGE_SIZE).get_page(page)
        patients = list(shown.object_list)
        visits = _visits(ctx, [p.pk for p in patients])
        for patient in patients:
            audit_view(ctx, "registered_patients.view", patient.pk, "patient", patient.pk)
    rows = [
        RegisteredPatient(
            patient=patient,
            age=_age(patient.date_of_birth, today),
            phone=phone_for_display(patient.phone) if patient.phone else "",
            last_visit=visits.get(patient.pk, {}).get("last"),
            next_visit=visits.get(patient.pk, {}).get("next"),
        )
        for patient in patients
    ]
    return RegisteredList(practitioner=practitioner, rows=rows, page=shown)
