"""Booking for a patient who phones the clinic.

The receptionist finds the caller by their health insurance number (through its blind
index: the number is never searched in clear, and it travels in a POST body, never in an
address that logs, history or referrers would keep), then gives them one of the clinic's
free times. The person chosen is kept in the staff member's session for this clinic, for
CALLER_MINUTES: no patient id in an address, and nothing to guess. The booking form
repeats the patient's id, so a second tab that chose another caller meanwhile cannot
book the wrong person. A caller nobody finds (no RDV Santé account) gets a file of this
clinic's, created from what was searched, and is chosen at once.
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
from rdv.clinics import services as clinic_services
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import Conflict, DomainError, NotFound
from rdv.patients import services as patient_services
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from rdv.scheduling.queries import clinic_free_slots_for
from rdv.web.errors import handles_domain_errors, posted
from rdv.web.portal import (
    FRONT_DESK,
    agenda_url,
    clinic_for,
    patient_token,
    read_patient_token,
    require_role,
)
from rdv.web.portal_phone_forms import (
    CallerForm,
    CallerIdentityForm,
    CallerRecordForm,
    CallerSlotsForm,
    ChooseCallerForm,
    PhoneBookForm,
)

CALLER_SALT = "rdv.portal.caller"
CALLER_MINUTES = 30
SESSION_KEY = "portal_caller"
DAYS_SHOWN = 7


def caller_token(ctx: StaffContext, patient: Patient) -> str:
    """What the "choose a time" button of a found person posts, good for CALLER_MINUTES."""
    return patient_token(ctx, patient.pk, salt=CALLER_SALT)


def _read_token(ctx: StaffContext, token: str) -> int:
    lost = NotFound(_("Find the caller again by their health insurance number."), code="caller")
    return read_patient_token(ctx, token, salt=CALLER_SALT, minutes=CALLER_MINUTES, lost=lost)


def _session_caller(request: HttpRequest, ctx: StaffContext) -> Patient:
    """The caller this staff member chose for this clinic, still within CALLER_MINUTES."""
    kept = request.session.get(SESSION_KEY)
    if (
        not isinstance(kept, dict)
        or kept.get("c") != ctx.clinic.pk
        or float(kept.get("until", 0)) < clock.now().timestamp()
    ):
        raise NotFound(_("Find the caller again by their health insurance number."), code="caller")
    return clinic_services.view_caller(ctx, int(kept["p"]))


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def find_caller(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Step 1: the caller's health insurance number → the people holding it."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    data = posted(request)
    by_identity = data is not None and f"{CallerIdentityForm.PREFIX}-last_name" in data
    form = CallerForm(None if by_identity else data)
    identity_form = CallerIdentityForm(data if by_identity else None, prefix="who")
    bound = identity_form if by_identity else form
    found: list[tuple[Patient, str]] = []
    status = 200
    if bound.is_bound and not bound.is_valid():
        status = 422
    elif bound.is_bound:
        # Each look-up is audited, and limited: a number is built from a name and a birth
        # date, so guessing its last digits (or a birth date) must stay slow.
        enforce(request, "caller_lookup", account=f"user:{ctx.user.pk}")
        try:
            people = _find(ctx, bound)
        except DomainError as exc:
            if exc.status != 422:
                raise
            field = exc.field if exc.field in bound.fields else None
            bound.add_error(field, str(exc.message))
            status = 422
        else:
            found = [(p, caller_token(ctx, p)) for p in people]
    searched = bound.is_bound and not bound.errors
    return render(
        request,
        "web/portal/phone.html",
        {
            "ctx": ctx,
            "form": form,
            "identity_form": identity_form,
            "searched": searched,
            "found": found,
            "new_form": _record_form_from(bound) if searched and not found else None,
            "portal_page": "phone",
        },
        status=status,
    )


def _record_form_from(searched: CallerForm | CallerIdentityForm) -> CallerRecordForm:
    """The "create the caller's file" form, filled with what was searched."""
    initial: dict[str, object] = {
        name: searched.cleaned_data[name]
        for name in ("ramq_number", "last_name", "first_name", "date_of_birth")
        if name in searched.cleaned_data
    }
    return CallerRecordForm(initial=initial, prefix=CallerRecordForm.PREFIX)


def _find(ctx: StaffContext, form: CallerForm | CallerIdentityForm) -> list[Patient]:
    if isinstance(form, CallerIdentityForm):
        return clinic_services.find_callers_by_identity(
            ctx,
            last_name=form.cleaned_data["last_name"],
            first_name=form.cleaned_data["first_name"],
            date_of_birth=form.cleaned_data["date_of_birth"],
        )
    return clinic_services.find_callers(ctx, form.cleaned_data["ramq_number"])


@require_POST
@login_required
@handles_domain_errors
def choose_caller(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """The receptionist picks one of the people found: kept in the session."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    form = ChooseCallerForm(request.POST)
    if not form.is_valid():
        return redirect("portal_phone", clinic_id=clinic_id)
    _keep_caller(request, ctx, _read_token(ctx, form.cleaned_data["caller"]))
    return redirect("portal_phone_slots", clinic_id=clinic_id)


def _keep_caller(request: HttpRequest, ctx: StaffContext, patient_id: int) -> None:
    request.session[SESSION_KEY] = {
        "p": patient_id,
        "c": ctx.clinic.pk,
        "until": (clock.now() + timedelta(minutes=CALLER_MINUTES)).timestamp(),
    }


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def create_caller(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Nobody found: the receptionist creates the caller's file (no account), who is then
    the chosen caller, on to the free times."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    form = CallerRecordForm(posted(request), prefix=CallerRecordForm.PREFIX)
    status = 200
    if form.is_bound and not form.is_valid():
        status = 422
    elif form.is_bound:
        try:
            patient = patient_services.create_caller(ctx, **form.cleaned_data)
        except DomainError as exc:
            if exc.status not in (409, 422):
                raise
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            status = exc.status
        else:
            _keep_caller(request, ctx, patient.pk)
            messages.success(
                request,
                _("The file of %(patient)s is created: choose their time.")
                % {"patient": f"{patient.first_name} {patient.last_name}"},
            )
            return redirect("portal_phone_slots", clinic_id=clinic_id)
    return render(
        request,
        "web/portal/phone_new.html",
        {"ctx": ctx, "new_form": form, "portal_page": "phone"},
        status=status,
    )


@require_GET
@login_required
@handles_domain_errors
def caller_slots(request: HttpRequest, clinic_id: int) -> HttpResponse:
    """Step 2: the clinic's free times this caller may take, a week at a time."""
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    try:
        patient = _session_caller(request, ctx)
    except NotFound as lost:  # none chosen, or half an hour ago: back to step 1
        messages.info(request, str(lost.message))
        return redirect("portal_phone", clinic_id=clinic_id)
    practitioners = [
        (p.pk, p.display_name) for p in ctx.clinic.practitioners.filter(is_active=True)
    ]
    form = CallerSlotsForm(request.GET or None, practitioners=practitioners)
    today = clock.local_today()
    first_day, practitioner_id = today, None
    if form.is_bound and form.is_valid():
        first_day = max(form.cleaned_data["date"] or today, today)
        practitioner_id = form.cleaned_data["practitioner"]
    slots = clinic_free_slots_for(
        ctx, patient, first_day=first_day, days=DAYS_SHOWN, practitioner_id=practitioner_id
    )
    return render(
        request,
        "web/portal/phone_slots.html",
        {
            "ctx": ctx,
            "form": form,
            "patient": patient,
            "slots": slots,
            "first_day": first_day,
            "next_week": first_day + timedelta(days=DAYS_SHOWN),
            "practitioner_id": practitioner_id,
            "portal_page": "phone",
        },
    )


@require_POST
@login_required
@handles_domain_errors
def book_for_caller(request: HttpRequest, clinic_id: int) -> HttpResponse:
    ctx = clinic_for(request, clinic_id)
    require_role(ctx, FRONT_DESK)
    form = PhoneBookForm(request.POST)
    if not form.is_valid():
        return redirect("portal_phone", clinic_id=clinic_id)
    patient = _session_caller(request, ctx)
    if patient.pk != form.cleaned_data["patient_id"]:
        raise Conflict(
            _("Another caller was chosen since this page was shown: check who this is for."),
            code="caller_changed",
        )
    appointment = scheduling.book_for_caller(
        ctx,
        patient_id=patient.pk,
        slot_id=form.cleaned_data["slot_id"],
        reason=form.cleaned_data["reason"],
    )
    request.session.pop(SESSION_KEY, None)
    messages.success(
        request,
        _("Booked for %(patient)s; the confirmation is on its way to them.")
        % {"patient": f"{patient.first_name} {patient.last_name}"},
    )
    return redirect(agenda_url(clinic_id, appointment))
