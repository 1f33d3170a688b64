"""Patient pages: find a slot, hold it, book it, see, move or cancel appointments.

Views parse, call one service, and render. Domain errors become form errors or an
error page (rdv.web.errors); nothing a visitor sends produces a 500.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from rdv.accounts.models import User
from rdv.api.limits import enforce
from rdv.core import clock
from rdv.core.errors import DomainError, NotFound, SlotUnavailable
from rdv.core.geo import municipalities
from rdv.patients.queries import bookable_patients
from rdv.scheduling import ics, services
from rdv.scheduling.models import AppointmentStatus, Slot
from rdv.scheduling.queries import (
    AvailabilityPage,
    FoundSlot,
    appointment_for_user,
    appointments_for_user,
    hold_seconds_left,
    search_availability,
    visible_slot,
)
from rdv.scheduling.search import DEFAULT_DAYS, SearchRequest, availability_query
from rdv.web import holds
from rdv.web.errors import error_page, handles_domain_errors, posted, signed_in
from rdv.web.forms import RADIUS_CHOICES, BookForm, CancelForm, HoldForm, MoveForm, SearchForm

PAGE_SIZE = 20


def _user(request: HttpRequest) -> User | None:
    user = request.user
    return user if isinstance(user, User) and user.is_authenticated else None


def _patient_choices(user: User | None) -> list[tuple[int, str]]:
    if user is None:
        return []
    return [(p.pk, f"{p.first_name} {p.last_name}") for p in bookable_patients(user)]


@require_GET
@handles_domain_errors
def search(request: HttpRequest) -> HttpResponse:
    """Home: the search form; with a place given, the earliest free slots nearby."""
    user = _user(request)
    patients = _patient_choices(user)
    form = SearchForm(request.GET or None, patients=patients)
    page: AvailabilityPage | None = None
    place = ""
    if form.is_bound and form.is_valid():
        enforce(request, "search", account=f"user:{user.pk}" if user else None)
        data = form.cleaned_data
        offset = data.get("offset") or 0
        try:
            query = availability_query(
                SearchRequest(
                    near=data["near"],
                    radius_km=data.get("radius_km") or 25,
                    date_from=data.get("date_from"),
                    date_to=data.get("date_to"),
                    appointment_type=data.get("appointment_type") or None,
                    language=data.get("language") or None,
                    family_doctor=bool(data.get("family_doctor")),
                    patient_id=data.get("patient_id") or None,
                    limit=PAGE_SIZE + offset,
                ),
                user,
            )
            page = search_availability(query)
            place = query.place.label
        except DomainError as exc:
            form.add_service_error(exc.field, str(exc.message))
    return render(
        request,
        "web/search.html",
        {
            "form": form,
            "page": page,
            "place": place,
            "more_url": _more_url(request, page),
            "wider_url": _wider_url(request, form, page),
            "municipalities": municipalities(),
            "reschedule": form.cleaned_data.get("reschedule") if form.is_bound else None,
            "family_visit": len(patients) >= 2,
        },
    )


def _more_url(request: HttpRequest, page: AvailabilityPage | None) -> str:
    if page is None or not page.has_more:
        return ""
    query = request.GET.copy()
    query["offset"] = str(len(page.results))
    return f"{reverse('search')}?{query.urlencode()}#slot-{len(page.results)}"


def _wider_url(request: HttpRequest, form: SearchForm, page: AvailabilityPage | None) -> str:
    """When nothing was found: the same search, twice as far and over twice the days."""
    if page is None or page.results or not form.is_valid():
        return ""
    data = form.cleaned_data
    query = request.GET.copy()
    widest = max(km for km, _label in RADIUS_CHOICES)
    query["radius_km"] = str(min(widest, 2 * (data.get("radius_km") or 25)))
    first = data.get("date_from") or clock.local_today()
    last = data.get("date_to") or first + timedelta(days=DEFAULT_DAYS - 1)
    query["date_to"] = (last + timedelta(days=(last - first).days + 1)).isoformat()
    query.pop("offset", None)
    return f"{reverse('search')}?{query.urlencode()}"


def _alternatives(user: User | None, slot: Slot) -> list[FoundSlot]:
    """A few other times like this one, nearby: what to offer when a slot was lost."""
    query = availability_query(
        SearchRequest(
            near=f"{slot.clinic.latitude},{slot.clinic.longitude}",
            radius_km=25,
            appointment_type=slot.appointment_type,
            limit=5,
        ),
        user,
    )
    return [found for found in search_availability(query).results if found.slot_id != slot.pk]


def _slot_page(
    request: HttpRequest,
    user: User | None,
    slot: Slot,
    form: BookForm | None,
    *,
    lost: bool = False,
    status: int = 200,
) -> HttpResponse:
    """`lost`: someone else took this slot; answer 409 with a few alternatives."""
    initial = {"slot_id": slot.pk, "patient_id": request.GET.get("pour")}
    hold_seconds = hold_seconds_left(
        slot, user=user, visitor_token=request.session.get(holds.SESSION_KEY)
    )
    return render(
        request,
        "web/slot.html",
        {
            "slot": slot,
            "held": hold_seconds > 0,
            "hold_seconds": hold_seconds,
            "needs_verification": user is not None and user.email_verified_at is None,
            "form": form or BookForm(initial=initial, patients=_patient_choices(user)),
            "hold_form": HoldForm(initial=initial, patients=_patient_choices(user)),
            "alternatives": _alternatives(user, slot) if lost else [],
            "lost": lost,
            "next": request.get_full_path(),
        },
        status=409 if lost else status,
    )


@require_GET
@handles_domain_errors
def slot_detail(request: HttpRequest, slot_id: int) -> HttpResponse:
    """One time slot: who, where, when; held for me with a countdown, and the booking form."""
    user = _user(request)
    return _slot_page(request, user, visible_slot(user, slot_id), None)


@require_POST
@handles_domain_errors
def hold(request: HttpRequest, slot_id: int) -> HttpResponse:
    """Hold the slot for a few minutes: for one of my patients (they must fit its type), or,
    for a visitor not signed in yet, until they sign in or create an account."""
    user = _user(request)
    if user is None:
        return _hold_for_visitor(request, slot_id)
    slot = visible_slot(user, slot_id)
    form = HoldForm(request.POST, patients=_patient_choices(user))
    if not form.is_valid():
        return _slot_page(request, user, slot, None, status=422)
    enforce(request, "hold", account=f"user:{user.pk}")
    patient_id = form.cleaned_data["patient_id"]
    try:
        services.hold_slot(user=user, slot_id=slot_id, patient_id=patient_id)
    except SlotUnavailable as exc:
        messages.error(request, str(exc.message))
        lost = BookForm(initial={"patient_id": patient_id}, patients=_patient_choices(user))
        return _slot_page(request, user, slot, lost, lost=True)
    except DomainError as exc:
        messages.error(request, str(exc.message))
        return redirect("slot", slot_id=slot_id)
    return redirect(f"{reverse('slot', args=[slot_id])}?pour={patient_id}")


def _hold_for_visitor(request: HttpRequest, slot_id: int) -> HttpResponse:
    slot = visible_slot(None, slot_id)
    enforce(request, "hold")
    try:
        services.hold_slot_for_visitor(visitor_token=holds.visitor_token(request), slot_id=slot_id)
    except SlotUnavailable as exc:
        messages.error(request, str(exc.message))
        return _slot_page(request, None, slot, None, lost=True)
    return redirect("slot", slot_id=slot_id)


@require_POST
@login_required
@handles_domain_errors
def book(request: HttpRequest) -> HttpResponse:
    """Book the held slot; if someone else got it, say so, keep what was typed, offer others."""
    user = signed_in(request)
    form = BookForm(request.POST, patients=_patient_choices(user))
    status = 422
    if "slot_id" in form.errors:
        return error_page(request, NotFound(_("Choose a time first.")))
    if form.is_valid():
        slot_id = form.cleaned_data["slot_id"]
        enforce(request, "book", account=f"user:{user.pk}")
        try:
            appointment = services.book_appointment(
                user=user,
                slot_id=slot_id,
                patient_id=form.cleaned_data["patient_id"],
                reason=form.cleaned_data["reason"],
            )
        except SlotUnavailable as exc:
            form.add_error(None, str(exc.message))
            return _slot_page(request, user, visible_slot(user, slot_id), form, lost=True)
        except DomainError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            status = exc.status
        else:
            messages.success(request, _("Your appointment is booked."))
            return redirect("appointment", appointment_id=appointment.pk)
    slot_id = int(request.POST["slot_id"])
    return _slot_page(request, user, visible_slot(user, slot_id), form, status=status)


@require_GET
@login_required
@handles_domain_errors
def my_appointments(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    now = clock.now()
    everything = list(appointments_for_user(user))
    upcoming = [a for a in everything if a.slot.end > now and a.status == AppointmentStatus.BOOKED]
    upcoming_ids = {a.pk for a in upcoming}
    past = [a for a in reversed(everything) if a.pk not in upcoming_ids]
    return render(request, "web/appointments.html", {"upcoming": upcoming, "past": past})


@require_GET
@login_required
@handles_domain_errors
def appointment_detail(request: HttpRequest, appointment_id: int) -> HttpResponse:
    user = signed_in(request)
    appointment = appointment_for_user(user, appointment_id)
    return render(
        request,
        "web/appointment.html",
        {
            "appointment": appointment,
            "active": appointment.status == AppointmentStatus.BOOKED
            and appointment.slot.start > clock.now(),
        },
    )


@require_GET
@login_required
@handles_domain_errors
def appointment_ics(request: HttpRequest, appointment_id: int) -> HttpResponse:
    user = signed_in(request)
    appointment = appointment_for_user(user, appointment_id)
    response = HttpResponse(
        ics.appointment_calendar(appointment, host=request.get_host()),
        content_type="text/calendar; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="rdv-sante-{appointment.pk}.ics"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
@handles_domain_errors
def cancel(request: HttpRequest, appointment_id: int) -> HttpResponse:
    user = signed_in(request)
    appointment = appointment_for_user(user, appointment_id)
    form = CancelForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.cancel_appointment(
                user=user, appointment_id=appointment.pk, reason=form.cleaned_data["reason"]
            )
        except DomainError as exc:
            form.add_error(None, str(exc.message))
        else:
            messages.success(request, _("Your appointment is cancelled."))
            return redirect("appointments")
    status = 422 if form.errors else 200
    return render(
        request, "web/cancel.html", {"appointment": appointment, "form": form}, status=status
    )


@require_POST
@login_required
@handles_domain_errors
def move(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Move an appointment to another slot in one step (the old one is freed only then)."""
    user = signed_in(request)
    appointment = appointment_for_user(user, appointment_id)
    form = MoveForm(request.POST)
    if form.is_valid():
        try:
            services.reschedule_appointment(
                user=user,
                appointment_id=appointment.pk,
                new_slot_id=form.cleaned_data["new_slot_id"],
            )
        except DomainError as exc:
            messages.error(request, str(exc.message))
        else:
            messages.success(request, _("Your appointment has been moved."))
            return redirect("appointment", appointment_id=appointment.pk)
    else:
        messages.error(request, _("Choose a new time."))
    return redirect("appointment", appointment_id=appointment.pk)
