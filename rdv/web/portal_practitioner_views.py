"""The clinic portal's week agenda, a practitioner's own day and registered patients, and
the front desk recording who is registered with which practitioner.

Every view takes its clinic through rdv.web.portal.clinic_for (another clinic: 404),
then parses, calls one service, and renders. Each patient shown is an audited read.

A patient is registered after being found by their health insurance number, exactly as a
phone caller is (rdv.clinics.services.find_callers: the blind index, audited, rate
limited). The button of a person found posts a signed token bound to this clinic and this
staff member, never a bare patient id: the front desk cannot register someone it has not
found by their card.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.api.limits import enforce
from rdv.clinics import agenda as clinic_agenda
from rdv.clinics import services as clinic_services
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import DomainError, NotFound
from rdv.patients import services as patient_services
from rdv.patients.models import Patient
from rdv.web.errors import handles_domain_errors, posted
from rdv.web.portal import (
    FRONT_DESK,
    clinic_for,
    patient_token,
    read_patient_token,
    require_role,
)
from rdv.web.portal_forms import (
    BACK_TO_MY_DAY,
    AttendanceForm,
    DayForm,
    MyDayForm,
    RegisteredAddForm,
    RegisteredFindForm,
)

REGISTRATION_SALT = "rdv.portal.registration"
REGISTRATION_MINUTES = 30


@require_GET
@login_required
@handles_domain_errors
def week(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Seven days of the clinic's appointments (all practitioners or one), from a chosen
    day or this week's Monday; each day links to its full agenda."""
    ctx = clinic_for(request, clinic_id)
    practitioners = list(ctx.clinic.practitioners.order_by("last_name", "first_name"))
    form = DayForm(
        request.GET or None, practitioners=[(p.pk, p.display_name) for p in practitioners]
    )
    today = clock.local_today()
    first_day, practitioner_id = clinic_agenda.monday_of(today), None
    if form.is_bound and form.is_valid():
        first_day = form.cleaned_data["date"] or first_day
        practitioner_id = form.cleaned_data["practitioner"]
    days = clinic_agenda.view_week(ctx, first_day, practitioner_id=practitioner_id)
    return render(
        request,
        "web/portal/week.html",
        {
            "ctx": ctx,
            "form": form,
            "days": days,
            "first_day": first_day,
            "last_day": first_day + timedelta(days=clinic_agenda.WEEK_DAYS - 1),
            "previous_week": first_day - timedelta(days=clinic_agenda.WEEK_DAYS),
            "next_week": first_day + timedelta(days=clinic_agenda.WEEK_DAYS),
            "this_week": clinic_agenda.monday_of(today),
            "today": today,
            "practitioner_id": practitioner_id,
            "portal_page": "agenda",
        },
    )


@require_GET
@login_required
@handles_domain_errors
def my_day(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The day of the practitioner this member is, with the agenda's attendance buttons."""
    ctx = clinic_for(request, clinic_id)
    practitioner = clinic_agenda.linked_practitioner(ctx)
    form = MyDayForm(request.GET or None)
    day = clock.local_today()
    if form.is_bound and form.is_valid():
        day = form.cleaned_data["date"] or day
    appointments = []
    if practitioner is not None:
        appointments = clinic_services.view_day(ctx, day, practitioner_id=practitioner.pk)
    return render(
        request,
        "web/portal/my_day.html",
        {
            "ctx": ctx,
            "form": form,
            "practitioner": practitioner,
            "day": day,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "today": clock.local_today(),
            "appointments": appointments,
            "now": clock.now(),
            "attendance": AttendanceForm(),
            "back": BACK_TO_MY_DAY,
            "portal_page": "my_day",
        },
    )


@require_GET
@login_required
@handles_domain_errors
def my_patients(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The patients registered with the practitioner this member is."""
    ctx = clinic_for(request, clinic_id)
    practitioner = clinic_agenda.linked_practitioner(ctx)
    listed = None
    if practitioner is not None:
        listed = clinic_agenda.registered_patients(
            ctx, practitioner.pk, page=request.GET.get("page")
        )
    return render(
        request,
        "web/portal/registered_patients.html",
        {
            "ctx": ctx,
            "mine": True,
            "practitioner": practitioner,
            "listed": listed,
            "portal_page": "my_patients",
        },
    )


@require_GET
@login_required
@handles_domain_errors
def registered(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The clinic's family doctors and nurse practitioners, with their registered patients'
    numbers: where the front desk opens one's list."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    return render(
        request,
        "web/portal/registered.html",
        {
            "ctx": ctx,
            "doctors": clinic_agenda.family_doctors(ctx),
            "portal_page": "registered",
        },
    )


def _registration_token(ctx: StaffContext, patient: Patient) -> str:
    return patient_token(ctx, patient.pk, salt=REGISTRATION_SALT)


def _read_registration_token(ctx: StaffContext, token: str) -> int:
    lost = NotFound(
        _("Find the patient again by their health insurance number."), code="patient_token"
    )
    return read_patient_token(
        ctx, token, salt=REGISTRATION_SALT, minutes=REGISTRATION_MINUTES, lost=lost
    )


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def practitioner_patients(
    request: HttpRequest, clinic_id: int, practitioner_id: int
) -> HttpResponse:
    """A practitioner's registered patients; for the front desk, a health insurance number
    posted here finds the people to register with them."""
    ctx = clinic_for(request, clinic_id)
    listed = clinic_agenda.registered_patients(ctx, practitioner_id, page=request.GET.get("page"))
    find_form = RegisteredFindForm(posted(request))
    found: list[tuple[Patient, str]] = []
    status = 200
    if find_form.is_bound:
        require_role(ctx, FRONT_DESK)
    if find_form.is_bound and find_form.is_valid():
        enforce(request, "caller_lookup", account=f"user:{ctx.user.pk}")
        try:
            people = clinic_services.find_callers(ctx, find_form.cleaned_data["ramq_number"])
        except DomainError as exc:
            if exc.status != 422:
                raise
            find_form.add_error("ramq_number", str(exc.message))
            status = 422
        else:
            found = [(p, _registration_token(ctx, p)) for p in people]
    elif find_form.is_bound:
        status = 422
    return render(
        request,
        "web/portal/registered_patients.html",
        {
            "ctx": ctx,
            "mine": False,
            "practitioner": listed.practitioner,
            "listed": listed,
            "find_form": find_form,
            "found": found,
            "front_desk": ctx.role in FRONT_DESK,
            "takes_patients": clinic_agenda.takes_registered_patients(listed.practitioner),
            "portal_page": "registered",
        },
        status=status,
    )


@require_POST
@login_required
@handles_domain_errors
def register_patient(request: HttpRequest, clinic_id: int, practitioner_id: int) -> HttpResponse:
    """Register a person found by their card with this practitioner."""
    ctx = clinic_for(request, clinic_id)
    form = RegisteredAddForm(request.POST)
    if not form.is_valid():
        clinic_agenda.clinic_practitioner(ctx, practitioner_id)  # another clinic's: 404
        return redirect("portal_practitioner_patients", clinic_id, practitioner_id)
    patient = patient_services.set_family_doctor(
        ctx,
        patient_id=_read_registration_token(ctx, form.cleaned_data["patient"]),
        practitioner_id=practitioner_id,
        registered=True,
    )
    messages.success(
        request,
        _("%(patient)s is registered with %(practitioner)s.")
        % {
            "patient": f"{patient.first_name} {patient.last_name}",
            "practitioner": patient.family_doctor.display_name if patient.family_doctor else "",
        },
    )
    return redirect("portal_practitioner_patients", clinic_id, practitioner_id)


@require_POST
@login_required
@handles_domain_errors
def unregister_patient(
    request: HttpRequest, clinic_id: int, practitioner_id: int, patient_id: int
) -> HttpResponse:
    """End a patient's registration with this practitioner."""
    ctx = clinic_for(request, clinic_id)
    patient = patient_services.set_family_doctor(
        ctx, patient_id=patient_id, practitioner_id=practitioner_id, registered=False
    )
    messages.success(
        request,
        _("%(patient)s is no longer registered with this practitioner.")
        % {"patient": f"{patient.first_name} {patient.last_name}"},
    )
    return redirect("portal_practitioner_patients", clinic_id, practitioner_id)
