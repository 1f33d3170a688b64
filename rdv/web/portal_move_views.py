"""Moving a booked appointment to another time of the clinic, for the front desk.

From the appointment's page: one day of the clinic's free times (any practitioner, any
type that fits the patient; see rdv.scheduling.services.move_for_clinic), then a POST to
the same address moves it and goes back to the agenda on the new day. Like every portal
page, the clinic comes through rdv.web.portal.clinic_for (another clinic: 404), and the
patient shown is an audited read.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from rdv.clinics import services as clinic_services
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment
from rdv.scheduling.queries import clinic_slots_for_move
from rdv.web.errors import handles_domain_errors, posted
from rdv.web.portal import FRONT_DESK, agenda_url, clinic_for, require_role
from rdv.web.portal_forms import DayForm
from rdv.web.portal_move_forms import MoveForm


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def move(request: HttpRequest, clinic_id: int, appointment_id: int) -> HttpResponse:
    """GET: the appointment and one day's free times; POST: move it to one of them."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    form = MoveForm(posted(request))
    status = 200
    if form.is_bound:
        status = 422
        if not form.is_valid():
            form.add_error(None, _("Choose one of the free times."))
        else:
            try:
                moved = scheduling.move_for_clinic(
                    ctx, appointment_id=appointment_id, new_slot_id=form.cleaned_data["slot_id"]
                )
            except DomainError as exc:
                if exc.status not in (409, 422):
                    raise
                form.add_error(None, str(exc.message))
                status = exc.status
            else:
                messages.success(request, _moved_message(moved))
                return redirect(agenda_url(clinic_id, moved))
    found = clinic_services.view_appointment(ctx, appointment_id)
    return _move_page(request, ctx, found, form, status)


def _moved_message(moved: Appointment) -> str:
    start = moved.slot.start.astimezone(clock.LOCAL_TZ)
    return _("The appointment is moved to %(when)s with %(who)s; the patient is told.") % {
        "when": formats.date_format(start, "DATETIME_FORMAT"),
        "who": moved.slot.practitioner.display_name,
    }


def _move_page(
    request: HttpRequest, ctx: StaffContext, found: Appointment, form: MoveForm, status: int
) -> HttpResponse:
    practitioners = [
        (p.pk, p.display_name)
        for p in ctx.clinic.practitioners.filter(is_active=True).order_by("last_name", "pk")
    ]
    day_form = DayForm(request.GET or None, practitioners=practitioners)
    today = clock.local_today()
    day: date = max(clock.local_date(found.slot.start), today)
    practitioner_id = None
    if day_form.is_bound and day_form.is_valid():
        day = max(day_form.cleaned_data["date"] or day, today)
        practitioner_id = day_form.cleaned_data["practitioner"]
    movable = found.status == found.Status.BOOKED and found.slot.end > clock.now()
    slots = (
        clinic_slots_for_move(ctx, found, day=day, practitioner_id=practitioner_id)
        if movable
        else []
    )
    query = {"date": day.isoformat()}
    if practitioner_id is not None:
        query["practitioner"] = str(practitioner_id)
    return render(
        request,
        "web/portal/move.html",
        {
            "ctx": ctx,
            "appointment": found,
            "day_form": day_form,
            "form": form,
            "day": day,
            "slots": slots,
            "movable": movable,
            "query": urlencode(query),
            "previous_day": _day_query(day - timedelta(days=1), practitioner_id, today),
            "next_day": _day_query(day + timedelta(days=1), practitioner_id, today),
            "agenda_url": agenda_url(ctx.clinic.pk, found),
            "portal_page": "agenda",
        },
        status=status,
    )


def _day_query(day: date, practitioner_id: int | None, today: date) -> str | None:
    """The query string of a neighbouring day (None before today)."""
    if day < today:
        return None
    query = {"date": day.isoformat()}
    if practitioner_id is not None:
        query["practitioner"] = str(practitioner_id)
    return urlencode(query)
