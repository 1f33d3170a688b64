"""The clinic administrator's closures (days off, vacations, Quebec's statutory holidays)
and the clinic's settings (cancellation cut-off, reminder days, sender details).

Like every portal page, each view takes its clinic through rdv.web.portal.clinic_for
(another clinic: 404), parses, calls one service, and renders. A closure is looked up in
the clinic before the role is checked, so another clinic's closure is "not found" for
every member of this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.clinics import services as clinic_services
from rdv.clinics.models import Practitioner
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Closure
from rdv.web.errors import handles_domain_errors, posted
from rdv.web.portal import ADMIN, clinic_for, require_role
from rdv.web.portal_admin_forms import put_error
from rdv.web.portal_settings_forms import ClinicSettingsForm, ClosureForm, HolidaysForm

Form = ClosureForm | HolidaysForm | ClinicSettingsForm


def _refused(form: Form, exc: DomainError) -> int:
    """Show a service's refusal on the form; the page's status. Anything but bad input
    (422) or a conflict (409) goes on to the error page."""
    if exc.status not in (409, 422):
        raise exc
    put_error(form, exc)
    return exc.status


@dataclass(frozen=True)
class ClosureRow:
    closure: Closure
    first_day: date
    last_day: date


def _row(closure: Closure) -> ClosureRow:
    """Its local days: a closure ends at the midnight after its last day."""
    first = clock.local_date(closure.starts_at)
    last = clock.local_date(closure.ends_at - timedelta(microseconds=1))
    return ClosureRow(closure=closure, first_day=first, last_day=last)


def _practitioners(ctx: StaffContext) -> list[Practitioner]:
    return [p for p in clinic_services.practitioners_of(ctx) if p.is_active]


def _closures_page(
    request: HttpRequest,
    ctx: StaffContext,
    *,
    closure_form: ClosureForm | None = None,
    holidays_form: HolidaysForm | None = None,
    status: int = 200,
) -> HttpResponse:
    require_role(ctx, ADMIN)
    return render(
        request,
        "web/portal/closures.html",
        {
            "ctx": ctx,
            "portal_page": "closures",
            "closures": [_row(c) for c in scheduling.clinic_closures(ctx)],
            "closure_form": closure_form or ClosureForm(practitioners=_practitioners(ctx)),
            "holidays_form": holidays_form or HolidaysForm(),
        },
        status=status,
    )


@require_GET
@login_required
@handles_domain_errors
def closures(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The clinic's upcoming closures, and the forms to add them."""
    return _closures_page(request, clinic_for(request, clinic_id))


def _added_message(booked: int) -> str:
    if booked == 0:
        return _("The closure is added: no time is offered during it.")
    return ngettext(
        "The closure is added and its free times are withdrawn. %(count)d appointment "
        "remains booked during it: cancel it with a reason from the agenda, or keep it.",
        "The closure is added and its free times are withdrawn. %(count)d appointments "
        "remain booked during it: cancel them with a reason from the agenda, or keep them.",
        booked,
    ) % {"count": booked}


@require_POST
@login_required
@handles_domain_errors
def closure_add(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Close one practitioner or the whole clinic for whole days."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, ADMIN)
    form = ClosureForm(request.POST, practitioners=_practitioners(ctx))
    status = 422
    if form.is_valid():
        try:
            data = form.cleaned_data
            _closure, booked = scheduling.add_closure(
                ctx,
                practitioner_id=data["practitioner"],
                first_day=data["first_day"],
                last_day=data["last_day"],
                reason=data["reason"],
            )
        except DomainError as exc:
            status = _refused(form, exc)
        else:
            messages.success(request, _added_message(booked))
            return redirect("portal_closures", clinic_id=clinic_id)
    return _closures_page(request, ctx, closure_form=form, status=status)


@require_POST
@login_required
@handles_domain_errors
def holidays_add(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Close the whole clinic on Quebec's statutory holidays of a year."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, ADMIN)
    form = HolidaysForm(request.POST)
    status = 422
    if form.is_valid():
        year = form.cleaned_data["year"]
        try:
            added = scheduling.add_statutory_holidays(ctx, year)
        except DomainError as exc:
            status = _refused(form, exc)
        else:
            if added:
                message = ngettext(
                    "%(count)d statutory holiday of %(year)d is added to the closures.",
                    "%(count)d statutory holidays of %(year)d are added to the closures.",
                    added,
                ) % {"count": added, "year": year}
            else:
                message = _(
                    "Every statutory holiday of %(year)d still ahead was already closed."
                ) % {"year": year}
            messages.success(request, message)
            return redirect("portal_closures", clinic_id=clinic_id)
    return _closures_page(request, ctx, holidays_form=form, status=status)


@require_POST
@login_required
@handles_domain_errors
def closure_remove(request: HttpRequest, clinic_id: int, closure_id: int) -> HttpResponse:
    """Reopen: the weekly times during the closure are offered again."""
    ctx = clinic_for(request, clinic_id)
    scheduling.remove_closure(ctx, closure_id)
    messages.success(
        request, _("The closure is removed: the weekly times during it are offered again.")
    )
    return redirect("portal_closures", clinic_id=clinic_id)


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def clinic_settings(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The online cancellation cut-off, the reminder days, and how the clinic's messages
    present themselves (sender name, reply-to address)."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, ADMIN)
    form = ClinicSettingsForm(posted(request), initial=ClinicSettingsForm.initial_for(ctx.clinic))
    status = 200
    if form.is_bound:
        status = 422
        if form.is_valid():
            try:
                clinic_services.update_clinic_settings(ctx, **form.cleaned_data)
            except DomainError as exc:
                status = _refused(form, exc)
            else:
                messages.success(
                    request,
                    _(
                        "The settings are saved. New reminder days apply to appointments "
                        "booked from now on."
                    ),
                )
                return redirect("portal_settings", clinic_id=clinic_id)
    return render(
        request,
        "web/portal/settings.html",
        {"ctx": ctx, "portal_page": "settings", "form": form},
        status=status,
    )
