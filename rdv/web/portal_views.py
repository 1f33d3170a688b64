"""The clinic portal: the day's agenda, and what the front desk records on it.

Every view takes its clinic through rdv.web.portal.clinic_for (another clinic: 404), then
parses, calls one service, and renders. Each patient shown is an audited read.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.clinics import services as clinic_services
from rdv.clinics.queries import StaffContext, memberships_of
from rdv.core import clock
from rdv.core.errors import DomainError, NotFound
from rdv.notifications.queries import messages_for
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, AppointmentStatus
from rdv.scheduling.queries import attendance_at_clinic
from rdv.web.errors import handles_domain_errors, posted, signed_in
from rdv.web.portal import FRONT_DESK, agenda_url, clinic_for, require_role
from rdv.web.portal_forms import BACK_TO_MY_DAY, AttendanceForm, ClinicCancelForm, DayForm


@require_GET
@login_required
@handles_domain_errors
def clinics(request: HttpRequest) -> HttpResponse:
    """The clinics the user works for; straight to the agenda when there is one."""
    memberships = memberships_of(signed_in(request))
    if not memberships:
        raise NotFound(_("Page not found."), code="not_staff")
    if len(memberships) == 1:
        return redirect("portal_agenda", clinic_id=memberships[0].clinic_id)
    return render(request, "web/portal/clinics.html", {"memberships": memberships})


@require_GET
@login_required
@handles_domain_errors
def agenda(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """One day of the clinic's appointments, all practitioners or one."""
    ctx = clinic_for(request, clinic_id)
    practitioners = list(ctx.clinic.practitioners.order_by("last_name", "first_name"))
    form = DayForm(
        request.GET or None, practitioners=[(p.pk, p.display_name) for p in practitioners]
    )
    day = clock.local_today()
    practitioner_id = None
    if form.is_bound and form.is_valid():
        day = form.cleaned_data["date"] or day
        practitioner_id = form.cleaned_data["practitioner"]
    appointments = clinic_services.view_day(ctx, day, practitioner_id=practitioner_id)
    active = [a for a in appointments if a.status != AppointmentStatus.CANCELLED]
    return render(
        request,
        "web/portal/agenda.html",
        {
            "ctx": ctx,
            "form": form,
            "day": day,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "today": clock.local_today(),
            "practitioner_id": practitioner_id,
            "appointments": appointments,
            "counts": {
                status: sum(1 for a in active if a.status == status)
                for status in AppointmentStatus.values
                if status != AppointmentStatus.CANCELLED
            },
            "now": clock.now(),
            "attendance": AttendanceForm(),
            "portal_page": "agenda",
        },
    )


@require_GET
@login_required
@handles_domain_errors
def appointment(request: HttpRequest, clinic_id: int, appointment_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    found = clinic_services.view_appointment(ctx, appointment_id)
    return _appointment_page(request, ctx, found, ClinicCancelForm())


def _appointment_page(
    request: HttpRequest,
    ctx: StaffContext,
    found: Appointment,
    cancel_form: ClinicCancelForm,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "web/portal/appointment.html",
        {
            "ctx": ctx,
            "appointment": found,
            "messages_sent": messages_for(found),
            "history": attendance_at_clinic(ctx, found.patient_id),
            "cancel_form": cancel_form,
            "agenda_url": agenda_url(found.slot.clinic_id, found),
        },
        status=status,
    )


@require_POST
@login_required
@handles_domain_errors
def attendance(request: HttpRequest, clinic_id: int, appointment_id: int) -> HttpResponse:
    """Arrived, fulfilled or no-show, from the agenda's buttons (or a practitioner's own
    day's, which it returns to)."""
    ctx = clinic_for(request, clinic_id)
    form = AttendanceForm(request.POST)
    if not form.is_valid():
        raise DomainError(_("Choose arrived, fulfilled or no-show."), code="invalid_status")
    changed = scheduling.record_attendance(
        ctx, appointment_id=appointment_id, status=form.cleaned_data["status"]
    )
    messages.success(
        request,
        _("%(patient)s: %(status)s.")
        % {
            "patient": f"{changed.patient.first_name} {changed.patient.last_name}",
            "status": changed.get_status_display(),
        },
    )
    if form.cleaned_data["back"] == BACK_TO_MY_DAY:
        day = clock.local_date(changed.slot.start).isoformat()
        return redirect(f"{reverse('portal_my_day', args=[clinic_id])}?{urlencode({'date': day})}")
    return redirect(agenda_url(clinic_id, changed))


@require_http_methods(["POST"])
@login_required
@handles_domain_errors
def cancel(request: HttpRequest, clinic_id: int, appointment_id: int) -> HttpResponse:
    """Cancel for the clinic, with the reason the patient is told."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    form = ClinicCancelForm(posted(request))
    status = 422
    if form.is_valid():
        try:
            cancelled = scheduling.cancel_for_clinic(
                ctx, appointment_id=appointment_id, reason=form.cleaned_data["reason"]
            )
        except DomainError as exc:
            if exc.status not in (409, 422):
                raise
            form.add_error("reason" if exc.field == "reason" else None, str(exc.message))
            status = exc.status
        else:
            messages.success(request, _("The appointment is cancelled; the patient is told."))
            return redirect(agenda_url(clinic_id, cancelled))
    found = clinic_services.view_appointment(ctx, appointment_id)
    return _appointment_page(request, ctx, found, form, status=status)
