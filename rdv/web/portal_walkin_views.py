"""The clinic portal's walk-in pages: the day's waves and live queue, one wave's list.

Like every portal view: the clinic comes through rdv.web.portal.clinic_for (another
clinic: 404), objects by id through rdv.walkin.queries (another clinic's: 404), then one
service; a change redirects (PRG) with a message. Who may do what is the services' rule;
the forms also refuse other roles up front, so nobody fills one in for a 403.
"""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import DomainError, ValidationError
from rdv.walkin import queries, services
from rdv.walkin.queries import WaveQueue
from rdv.web.errors import handles_domain_errors
from rdv.web.portal import FRONT_DESK, clinic_for, require_role
from rdv.web.portal_walkin_forms import (
    AddWalkInForm,
    OpenWavesForm,
    WalkInDayForm,
    WalkInStatusForm,
)

# The service's field names that differ from the form's.
_FORM_FIELD = {"day": "date"}


def _walkins_url(clinic_id: int, day: date) -> str:
    return f"{reverse('portal_walkins', args=[clinic_id])}?{urlencode({'date': day.isoformat()})}"


def _add_error(form: OpenWavesForm | AddWalkInForm, exc: DomainError) -> None:
    """Show a service's refusal on the form: on its field when the form has it."""
    field = _FORM_FIELD.get(exc.field or "", exc.field)
    form.add_error(field if field in form.fields else None, str(exc.message))


def _open_form(ctx: StaffContext, data: object = None, day: date | None = None) -> OpenWavesForm:
    practitioners = ctx.clinic.practitioners.filter(is_active=True).order_by(
        "last_name", "first_name"
    )
    return OpenWavesForm(
        data,
        initial={"date": day},
        practitioners=[(p.pk, p.display_name) for p in practitioners],
        auto_id="waves_%s",  # the page's day picker has its own "date" field
    )


def _walkins_page(
    request: HttpRequest,
    ctx: StaffContext,
    day: date,
    open_form: OpenWavesForm,
    status: int = 200,
) -> HttpResponse:
    today = clock.local_today()
    return render(
        request,
        "web/portal/walkins.html",
        {
            "ctx": ctx,
            "portal_page": "walkins",
            "day": day,
            "today": today,
            "previous_day": day - timedelta(days=1),
            "next_day": day + timedelta(days=1),
            "day_form": WalkInDayForm(initial={"date": day}),
            "queue": services.view_queue(ctx, day),
            "open_form": open_form,
            "can_open": day >= today,
            "live_url": _walkins_url(ctx.clinic.pk, day),
        },
        status=status,
    )


@require_GET
@login_required
@handles_domain_errors
def walkins(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The day's waves (places taken of capacity) and everyone waiting, in order."""
    ctx = clinic_for(request, clinic_id)
    form = WalkInDayForm(request.GET or None)
    day = clock.local_today()
    if form.is_bound and form.is_valid():
        day = form.cleaned_data["date"] or day
    return _walkins_page(request, ctx, day, _open_form(ctx, day=day))


@require_POST
@login_required
@handles_domain_errors
def waves_open(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    form = _open_form(ctx, request.POST)
    status = 422
    if form.is_valid():
        data = form.cleaned_data
        try:
            opened = services.open_waves(
                ctx,
                day=data["date"],
                first_start=data["first_start"],
                last_start=data["last_start"],
                minutes=data["minutes"],
                capacity=data["capacity"],
                practitioner_id=data["practitioner"],
            )
        except DomainError as exc:
            if exc.status not in (409, 422):
                raise
            _add_error(form, exc)
            status = exc.status
        else:
            messages.success(
                request,
                ngettext("%(count)d wave opened.", "%(count)d waves opened.", len(opened))
                % {"count": len(opened)},
            )
            return redirect(_walkins_url(clinic_id, data["date"]))
    day = form.cleaned_data.get("date") or clock.local_today()
    return _walkins_page(request, ctx, day, form, status=status)


def _wave_page(
    request: HttpRequest,
    ctx: StaffContext,
    wave_queue: WaveQueue,
    add_form: AddWalkInForm,
    status: int = 200,
) -> HttpResponse:
    wave = wave_queue.wave
    return render(
        request,
        "web/portal/wave.html",
        {
            "ctx": ctx,
            "portal_page": "walkins",
            "wave": wave,
            "wave_queue": wave_queue,
            "next_wave": queries.next_wave_with_room(ctx, wave) if wave.is_full else None,
            "add_form": add_form,
            "status_form": WalkInStatusForm(),
            "walkins_url": _walkins_url(ctx.clinic.pk, clock.local_date(wave.start)),
        },
        status=status,
    )


@require_GET
@login_required
@handles_domain_errors
def wave(request: HttpRequest, clinic_id: int, wave_id: int) -> HttpResponse:
    """One wave's walk-ins and the form to add one."""
    ctx = clinic_for(request, clinic_id)
    return _wave_page(request, ctx, services.view_wave(ctx, wave_id), AddWalkInForm())


@require_POST
@login_required
@handles_domain_errors
def walk_in_add(request: HttpRequest, clinic_id: int, wave_id: int) -> HttpResponse:
    """Give the wave's next place; a full wave re-renders the form with why (409)."""
    ctx = clinic_for(request, clinic_id)
    queries.wave_for(ctx, wave_id)  # another clinic's wave: 404 before anything else
    require_role(ctx, FRONT_DESK)
    form = AddWalkInForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            added = services.add_walk_in(ctx, wave_id, **form.cleaned_data)
        except DomainError as exc:
            if exc.status not in (409, 422):
                raise
            _add_error(form, exc)
            status = exc.status
        else:
            messages.success(
                request,
                _("%(name)s has place %(place)d.")
                % {"name": f"{added.first_name} {added.last_name}", "place": added.place},
            )
            return redirect("portal_wave", clinic_id=clinic_id, wave_id=wave_id)
    return _wave_page(request, ctx, services.view_wave(ctx, wave_id), form, status=status)


@require_POST
@login_required
@handles_domain_errors
def wave_call_next(request: HttpRequest, clinic_id: int, wave_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    called = services.call_next(ctx, wave_id)
    messages.success(
        request,
        _("Called: %(name)s (place %(place)d).")
        % {"name": f"{called.first_name} {called.last_name}", "place": called.place},
    )
    return redirect("portal_wave", clinic_id=clinic_id, wave_id=wave_id)


@require_POST
@login_required
@handles_domain_errors
def walk_in_status(request: HttpRequest, clinic_id: int, walk_in_id: int) -> HttpResponse:
    """Called, seen or left, from the wave's buttons."""
    ctx = clinic_for(request, clinic_id)
    queries.walk_in_for(ctx, walk_in_id)  # another clinic's person: 404 before anything else
    require_role(ctx, FRONT_DESK)
    form = WalkInStatusForm(request.POST)
    if not form.is_valid():
        raise ValidationError(_("Choose called, seen or left."), code="invalid_status")
    changed = services.set_walk_in_status(ctx, walk_in_id, form.cleaned_data["walk_in_status"])
    messages.success(
        request,
        _("%(name)s: %(status)s.")
        % {
            "name": f"{changed.first_name} {changed.last_name}",
            "status": changed.get_status_display(),
        },
    )
    return redirect("portal_wave", clinic_id=clinic_id, wave_id=changed.wave_id)
