"""The privacy pages (Quebec Law 25): the policy and its officer, who viewed my file, a
copy of my data, and deleting my account.

Views parse, call one service or query, and render (rdv.accounts.privacy holds the rules).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.accounts import privacy
from rdv.accounts.models import User
from rdv.accounts.queries import is_staff_member
from rdv.accounts.registration import TERMS_VERSION
from rdv.api.limits import enforce
from rdv.audit.models import Outcome
from rdv.audit.queries import AccessRecord, access_log_for, describe_access
from rdv.clinics.models import Membership
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.scheduling.models import Appointment, AppointmentStatus
from rdv.scheduling.queries import appointments_for_user
from rdv.web.errors import handles_domain_errors, signed_in
from rdv.web.privacy_forms import DeleteAccountForm

ACCESS_LOG_PAGE_SIZE = 50
# Set in the fresh session of someone who just deleted their account, for one page view.
DELETED_FLAG = "rdv_account_deleted"

# What each audited action means, as a patient reads it; an unknown code shows as is.
ACTION_LABELS: dict[str, Promise] = {
    "patient.view": _("Viewed the file"),
    "appointment.view": _("Viewed an appointment"),
    "agenda.view": _("Saw an appointment in the day's agenda"),
    "appointment.book": _("Booked an appointment"),
    "appointment.cancel": _("Cancelled an appointment"),
    "appointment.move": _("Moved an appointment"),
    "patient.health_card": _("Recorded the health insurance card"),
    "agenda.export": _("Included an appointment in a printed or downloaded agenda"),
    "appointment.arrived": _("Recorded the arrival at the clinic"),
    "appointment.fulfilled": _("Recorded the visit as done"),
    "appointment.noshow": _("Recorded an absence"),
    "patient.lookup": _(
        "Found the file by the health insurance number or by name and date of birth (a phone call)"
    ),
    "registered_patients.view": _("Saw the file in a practitioner's registered patients"),
    "patient.family_doctor": _("Registered the patient with a family doctor of the clinic"),
    "patient.family_doctor_removed": _("Ended the registration with the clinic's doctor"),
    "patient.data_export": _("Included the file in a full export of the clinic's data"),
    "patient.create_record": _("Created the file for a phone call"),
}
ROLE_LABELS: dict[str, Promise | str] = {
    **dict(Membership.Role.choices),
    "platform_admin": _("Platform administrator"),
}


@dataclass(frozen=True)
class AccessRow:
    """One line of "who viewed my file", with its codes put into words."""

    record: AccessRecord
    action: Promise | str
    role: Promise | str
    outcome: Promise | str
    succeeded: bool


def _row(record: AccessRecord) -> AccessRow:
    outcomes: dict[str, Promise | str] = dict(Outcome.choices)
    return AccessRow(
        record=record,
        action=ACTION_LABELS.get(record.action, record.action),
        role=ROLE_LABELS.get(record.staff_role, record.staff_role),
        outcome=outcomes.get(record.outcome, record.outcome),
        succeeded=record.outcome == Outcome.SUCCESS,
    )


@require_GET
def policy(request: HttpRequest) -> HttpResponse:
    """The privacy policy: what, why, how long, your rights, and whom to write to."""
    return render(
        request,
        "web/privacy.html",
        {
            "officer_name": settings.PRIVACY_OFFICER_NAME,
            "officer_title": settings.PRIVACY_OFFICER_TITLE,
            "officer_email": settings.PRIVACY_OFFICER_EMAIL,
            "terms_version": TERMS_VERSION,
            "retention_years": settings.PRIVACY_RETENTION_DAYS // 365,
        },
    )


@require_GET
@never_cache
@login_required
@handles_domain_errors
def access_log(request: HttpRequest) -> HttpResponse:
    """Clinic staff's access to the files of the people I manage, newest first."""
    user = signed_in(request)
    page = Paginator(access_log_for(user), ACCESS_LOG_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [_row(record) for record in describe_access(page.object_list)]
    return render(request, "web/access_log.html", {"page": page, "rows": rows})


def _upcoming(user: User) -> list[Appointment]:
    return list(
        appointments_for_user(user).filter(
            status=AppointmentStatus.BOOKED, slot__start__gt=clock.now()
        )
    )


def _my_data_page(
    request: HttpRequest, user: User, form: DeleteAccountForm, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "web/my_data.html",
        {
            "form": form,
            "upcoming": _upcoming(user),
            "may_delete": not is_staff_member(user),
            "retention_years": settings.PRIVACY_RETENTION_DAYS // 365,
        },
        status=status,
    )


@require_GET
@never_cache
@login_required
@handles_domain_errors
def my_data(request: HttpRequest) -> HttpResponse:
    """Download a copy of my data, or delete my account."""
    return _my_data_page(request, signed_in(request), DeleteAccountForm())


@require_http_methods(["GET", "POST"])
@never_cache
@login_required
@handles_domain_errors
def data_export(request: HttpRequest) -> HttpResponse:
    """My data as a JSON file (POST: the export is an audited act; GET leads to the page)."""
    if request.method != "POST":
        return redirect("my_data")
    user = signed_in(request)
    data = privacy.export_account_data(user)
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    filename = f"rdv-sante-mes-donnees-{clock.local_today().isoformat()}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_POST
@never_cache
@login_required
@handles_domain_errors
def delete_account(request: HttpRequest) -> HttpResponse:
    """Delete my account (password typed again and an explicit confirmation), sign out."""
    user = signed_in(request)
    privacy.check_may_delete(user)
    form = DeleteAccountForm(request.POST)
    if form.is_valid():
        # Each try is a password guess: the sign-in limits apply.
        enforce(request, "signin", account=f"user:{user.pk}")
        try:
            privacy.delete_account(user, form.cleaned_data["password"])
        except DomainError as exc:
            if exc.field not in form.fields:
                raise
            form.add_error(exc.field, str(exc.message))
        else:
            logout(request)
            request.session[DELETED_FLAG] = True
            return redirect("account_deleted")
    return _my_data_page(request, user, form, status=422)


@require_GET
def account_deleted(request: HttpRequest) -> HttpResponse:
    """The confirmation, shown once, right after the deletion."""
    if not request.session.pop(DELETED_FLAG, False):
        return redirect("search")
    return render(
        request,
        "web/account_deleted.html",
        {
            "officer_email": settings.PRIVACY_OFFICER_EMAIL,
            "retention_years": settings.PRIVACY_RETENTION_DAYS // 365,
        },
    )
