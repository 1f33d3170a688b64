"""The clinic's statistics (front desk: administrators and receptionists) and the
download of all the clinic's data (administrators).

Like every portal page, each view takes its clinic through rdv.web.portal.clinic_for
(another clinic: 404) before checking the role, parses, calls one service, and renders.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rdv.clinics import data_export, stats
from rdv.clinics.queries import StaffContext
from rdv.core.errors import DomainError
from rdv.web.downloads import download
from rdv.web.errors import error_page, handles_domain_errors
from rdv.web.portal import ADMIN, FRONT_DESK, clinic_for, require_role
from rdv.web.portal_admin_forms import put_error
from rdv.web.portal_stats_forms import StatsForm


def period_query(request: HttpRequest) -> QueryDict:
    """The query string, with an empty or missing day replaced by the default one (the
    last 30 days), so the page shows the period it counts and the CSV link repeats it."""
    first_day, last_day = stats.default_period()
    data = request.GET.copy()
    for name, day in (("from", first_day), ("to", last_day)):
        if not data.get(name, "").strip():
            data[name] = day.isoformat()
    return data


def _computed(
    request: HttpRequest, ctx: StaffContext, data: QueryDict
) -> tuple[StatsForm, stats.ClinicStats | None]:
    """The form as sent, and the figures, or None when the form or the service refused
    it (the errors are then on the form)."""
    practitioners = list(ctx.clinic.practitioners.order_by("last_name", "first_name", "pk"))
    form = StatsForm(data, practitioners=practitioners)
    if not form.is_valid():
        return form, None
    cleaned = form.cleaned_data
    try:
        computed = stats.clinic_stats(
            ctx,
            first_day=cleaned["from"],
            last_day=cleaned["to"],
            practitioner_id=cleaned["practitioner"],
        )
    except DomainError as exc:
        if exc.status != 422:
            raise
        put_error(form, exc)
        return form, None
    return form, computed


def _page(
    request: HttpRequest,
    ctx: StaffContext,
    data: QueryDict,
    form: StatsForm,
    computed: stats.ClinicStats | None,
) -> HttpResponse:
    return render(
        request,
        "web/portal/stats.html",
        {
            "ctx": ctx,
            "portal_page": "stats",
            "form": form,
            "stats": computed,
            "query": data.urlencode(),
        },
        status=200 if computed is not None else 422,
    )


@require_GET
@login_required
@handles_domain_errors
def stats_page(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The figures of a period, in all and per week, with their definitions."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    data = period_query(request)
    form, computed = _computed(request, ctx, data)
    return _page(request, ctx, data, form, computed)


@require_GET
@login_required
@handles_domain_errors
def stats_csv(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The same figures as CSV; bad input shows the page with its errors."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    data = period_query(request)
    form, computed = _computed(request, ctx, data)
    if computed is None:
        return _page(request, ctx, data, form, computed)
    total = computed.total
    name = f"clinique-{ctx.clinic.pk}-statistiques-{total.first_day}-{total.last_day}.csv"
    return download(stats.stats_csv(computed), "text/csv; charset=utf-8", name)


@require_GET
@login_required
def export_all(request: HttpRequest, clinic_id: int) -> HttpResponseBase:
    """Everything the platform holds for this clinic, as a ZIP (a Frictionless Data
    Package of CSV files); an audited read of every patient in it. Streamed from a
    temporary file, so errors are caught here (handles_domain_errors wants an
    HttpResponse)."""
    try:
        ctx = clinic_for(request, clinic_id)
        require_role(ctx, ADMIN)
        archive = data_export.export_clinic(ctx)
    except DomainError as exc:
        return error_page(request, exc)
    response = FileResponse(
        archive,
        as_attachment=True,
        filename=data_export.archive_name(ctx),
        content_type="application/zip",
    )
    response["Cache-Control"] = "no-store"  # patient data: no copy in any cache
    return response
