"""The clinic portal's continuity downloads: the day sheet (PDF) and the next days' agenda
(CSV, iCalendar), so a clinic can keep working from paper or another calendar if the
platform is unreachable. Every staff role may download them; each is an audited read."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from rdv.clinics import exports
from rdv.core import clock
from rdv.core.errors import ValidationError
from rdv.web.downloads import download
from rdv.web.errors import handles_domain_errors
from rdv.web.portal import clinic_for


def _day(request: HttpRequest, name: str) -> date:
    """A YYYY-MM-DD query parameter; today when it is absent or empty."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return clock.local_today()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ValidationError(
            _("Enter the date as YYYY-MM-DD, for example 2026-11-24."), field=name
        ) from None


@require_GET
@login_required
@handles_domain_errors
def exports_page(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    today = clock.local_today()
    return render(
        request,
        "web/portal/exports.html",
        {
            "ctx": ctx,
            "portal_page": "exports",
            "today": today,
            "tomorrow": today + timedelta(days=1),
            "days": exports.EXPORT_DAYS,
        },
    )


@require_GET
@login_required
@handles_domain_errors
def day_sheet(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    day = _day(request, "date")
    return download(
        exports.day_sheet_pdf(ctx, day),
        "application/pdf",
        f"clinique-{ctx.clinic.pk}-feuille-du-jour-{day.isoformat()}.pdf",
    )


def _period_name(clinic_id: int, first_day: date, extension: str) -> str:
    last_day = first_day + timedelta(days=exports.EXPORT_DAYS - 1)
    return f"clinique-{clinic_id}-agenda-{first_day.isoformat()}-{last_day.isoformat()}.{extension}"


@require_GET
@login_required
@handles_domain_errors
def agenda_csv(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    first_day = _day(request, "from")
    return download(
        exports.agenda_csv(ctx, first_day),
        "text/csv; charset=utf-8",
        _period_name(ctx.clinic.pk, first_day, "csv"),
    )


@require_GET
@login_required
@handles_domain_errors
def agenda_ics(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    first_day = _day(request, "from")
    return download(
        exports.agenda_ics(ctx, first_day),
        "text/calendar; charset=utf-8",
        _period_name(ctx.clinic.pk, first_day, "ics"),
    )
