"""The finder's fairness report for a clinic (front desk: administrators and
receptionists, like the statistics page it sits beside), and its CSV.

Each view takes its clinic through rdv.web.portal.clinic_for (another clinic: 404) before
checking the role, parses the period, calls rdv.finder.report, and renders. The report
names no patient (request ids and ranks only), so it is not an audited read.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.views.decorators.http import require_GET

from rdv.clinics.queries import StaffContext
from rdv.core.errors import DomainError
from rdv.finder import report
from rdv.web.downloads import download
from rdv.web.errors import handles_domain_errors
from rdv.web.finder_forms import PeriodForm
from rdv.web.portal import FRONT_DESK, clinic_for, require_role
from rdv.web.portal_admin_forms import put_error
from rdv.web.portal_stats_views import period_query


def _computed(
    ctx: StaffContext, data: QueryDict
) -> tuple[PeriodForm, report.FairnessReport | None]:
    form = PeriodForm(data)
    if not form.is_valid():
        return form, None
    try:
        computed = report.fairness_report(
            ctx, first_day=form.cleaned_data["from"], last_day=form.cleaned_data["to"]
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
    form: PeriodForm,
    computed: report.FairnessReport | None,
) -> HttpResponse:
    return render(
        request,
        "web/portal/fairness.html",
        {
            "ctx": ctx,
            "portal_page": "fairness",
            "form": form,
            "report": computed,
            "page_rows": report.PAGE_ROWS,
            "query": data.urlencode(),
        },
        status=200 if computed is not None else 422,
    )


@require_GET
@login_required
@handles_domain_errors
def fairness_page(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """How the finder gave this clinic's slots over a period, with the fairness checks."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    data = period_query(request)
    form, computed = _computed(ctx, data)
    return _page(request, ctx, data, form, computed)


@require_GET
@login_required
@handles_domain_errors
def fairness_csv(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The same report as CSV; bad input shows the page with its errors."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    data = period_query(request)
    form, computed = _computed(ctx, data)
    if computed is None:
        return _page(request, ctx, data, form, computed)
    name = f"clinique-{ctx.clinic.pk}-equite-{computed.first_day}-{computed.last_day}.csv"
    return download(report.fairness_csv(computed), "text/csv; charset=utf-8", name)
