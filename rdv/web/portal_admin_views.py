"""The clinic administrator's pages: practitioners and their weekly times.

Like every portal page, each view takes its clinic through rdv.web.portal.clinic_for
(another clinic: 404), parses, calls one service, and renders. The services check the
role (clinic administrators only) after looking the practitioner up, so another clinic's
practitioner is "not found" for every member of this one.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from rdv.clinics import services as clinic_services
from rdv.clinics.queries import StaffContext
from rdv.core.errors import DomainError
from rdv.scheduling import services as scheduling
from rdv.web.errors import handles_domain_errors, posted
from rdv.web.portal import ADMIN, clinic_for, require_role
from rdv.web.portal_admin_forms import (
    PractitionerForm,
    PractitionerStatusForm,
    RuleReleaseForm,
    WeeklyRuleForm,
    put_error,
)

PAGE = "practitioners"  # the portal's navigation item these pages belong to


def _refused(
    form: PractitionerForm | PractitionerStatusForm | WeeklyRuleForm | RuleReleaseForm,
    exc: DomainError,
) -> int:
    """Show a service's refusal on the form; the page's status. Anything but bad input
    (422) or a conflict (409) goes on to the error page."""
    if exc.status not in (409, 422):
        raise exc
    put_error(form, exc)
    return exc.status


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def practitioners(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The clinic's practitioners, and the form to add one."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, ADMIN)
    form = PractitionerForm(posted(request))
    status = 200
    if form.is_bound:
        status = 422
        if form.is_valid():
            try:
                added = clinic_services.add_practitioner(ctx, **form.cleaned_data)
            except DomainError as exc:
                status = _refused(form, exc)
            else:
                messages.success(
                    request,
                    _("%(name)s is added. Now add their weekly times.")
                    % {"name": added.display_name},
                )
                return redirect(
                    "portal_practitioner", clinic_id=clinic_id, practitioner_id=added.pk
                )
    return render(
        request,
        "web/portal/practitioners.html",
        {
            "ctx": ctx,
            "portal_page": PAGE,
            "practitioners": clinic_services.practitioners_of(ctx),
            "form": form,
        },
        status=status,
    )


def _practitioner_page(
    request: HttpRequest,
    ctx: StaffContext,
    practitioner_id: int,
    *,
    status_form: PractitionerStatusForm | None = None,
    rule_form: WeeklyRuleForm | None = None,
    release_form: tuple[int, RuleReleaseForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    details = clinic_services.practitioner_details(ctx, practitioner_id)
    release_forms = {
        rule.pk: RuleReleaseForm(
            auto_id=f"id_rule{rule.pk}_%s", initial={"release_hours": rule.release_hours}
        )
        for rule in details.rules
    }
    if release_form is not None:  # the one just refused, with its error
        release_forms[release_form[0]] = release_form[1]
    if status_form is None:
        status_form = PractitionerStatusForm(
            initial=PractitionerStatusForm.initial_for(details.practitioner, details.languages)
        )
    return render(
        request,
        "web/portal/practitioner.html",
        {
            "ctx": ctx,
            "portal_page": PAGE,
            "details": details,
            "practitioner": details.practitioner,
            "rules": [
                (rule, WEEKDAYS[rule.weekday], release_forms[rule.pk]) for rule in details.rules
            ],
            "status_form": status_form,
            "rule_form": rule_form or WeeklyRuleForm(),
        },
        status=status,
    )


def _status_message(change: clinic_services.PractitionerChange) -> str:
    name = change.practitioner.display_name
    if not change.deactivated:
        if change.reactivated:
            return _("%(name)s is active again: their weekly times are offered.") % {"name": name}
        return _("The changes are saved.")
    if change.booked_ahead == 0:
        return _(
            "%(name)s is inactive: their free times are withdrawn, and no upcoming "
            "appointment remains with them."
        ) % {"name": name}
    return ngettext(
        "%(name)s is inactive: their free times are withdrawn. %(count)d upcoming "
        "appointment remains booked with them: keep it or cancel it from the agenda.",
        "%(name)s is inactive: their free times are withdrawn. %(count)d upcoming "
        "appointments remain booked with them: keep them or cancel them from the agenda.",
        change.booked_ahead,
    ) % {"name": name, "count": change.booked_ahead}


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def practitioner(request: HttpRequest, clinic_id: int, practitioner_id: int) -> HttpResponse:
    """One practitioner: active or not, new patients, languages, and weekly times."""
    ctx = clinic_for(request, clinic_id)
    if request.method == "GET":
        return _practitioner_page(request, ctx, practitioner_id)
    form = PractitionerStatusForm(posted(request))
    status = 422
    if form.is_valid():
        try:
            change = clinic_services.update_practitioner(ctx, practitioner_id, **form.cleaned_data)
        except DomainError as exc:
            status = _refused(form, exc)
        else:
            messages.success(request, _status_message(change))
            return redirect(
                "portal_practitioner", clinic_id=clinic_id, practitioner_id=practitioner_id
            )
    return _practitioner_page(request, ctx, practitioner_id, status_form=form, status=status)


@require_POST
@login_required
@handles_domain_errors
def rule_add(request: HttpRequest, clinic_id: int, practitioner_id: int) -> HttpResponse:
    """Add a weekly time; its slots are published at once."""
    ctx = clinic_for(request, clinic_id)
    form = WeeklyRuleForm(request.POST)
    status = 422
    if form.is_valid():
        try:
            scheduling.add_weekly_rule(ctx, practitioner_id, **form.cleaned_data)
        except DomainError as exc:
            status = _refused(form, exc)
        else:
            messages.success(request, _("The weekly time is added and its times are published."))
            return redirect(
                "portal_practitioner", clinic_id=clinic_id, practitioner_id=practitioner_id
            )
    return _practitioner_page(request, ctx, practitioner_id, rule_form=form, status=status)


@require_POST
@login_required
@handles_domain_errors
def rule_remove(
    request: HttpRequest, clinic_id: int, practitioner_id: int, rule_id: int
) -> HttpResponse:
    """Remove a weekly time: its free times go, booked appointments stay."""
    ctx = clinic_for(request, clinic_id)
    kept = scheduling.remove_weekly_rule(ctx, practitioner_id, rule_id)
    if kept:
        message = ngettext(
            "The weekly time is removed and its free times are withdrawn. %(count)d booked "
            "appointment at those times is kept.",
            "The weekly time is removed and its free times are withdrawn. %(count)d booked "
            "appointments at those times are kept.",
            kept,
        ) % {"count": kept}
    else:
        message = _("The weekly time is removed and its free times are withdrawn.")
    messages.success(request, message)
    return redirect("portal_practitioner", clinic_id=clinic_id, practitioner_id=practitioner_id)


@require_POST
@login_required
@handles_domain_errors
def rule_release(
    request: HttpRequest, clinic_id: int, practitioner_id: int, rule_id: int
) -> HttpResponse:
    """Change when a reserved weekly time's free slots open to the public."""
    ctx = clinic_for(request, clinic_id)
    form = RuleReleaseForm(request.POST, auto_id=f"id_rule{rule_id}_%s")
    status = 422
    if form.is_valid():
        try:
            scheduling.set_rule_release(
                ctx, practitioner_id, rule_id, release_hours=form.cleaned_data["release_hours"]
            )
        except DomainError as exc:
            status = _refused(form, exc)
        else:
            messages.success(
                request, _("The change is saved; the free times of this weekly time follow it.")
            )
            return redirect(
                "portal_practitioner", clinic_id=clinic_id, practitioner_id=practitioner_id
            )
    return _practitioner_page(
        request, ctx, practitioner_id, release_form=(rule_id, form), status=status
    )
