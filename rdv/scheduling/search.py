"""What a search for free slots means, checked: shared by the API and the web pages.

A `SearchRequest` is what a person asked for (a place, dates, filters); `availability_query`
checks it against the rules (dates in range, a known place, who may see which reserved
slots) and turns it into the `AvailabilityQuery` that `queries.search_availability` runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.core import clock
from rdv.core.errors import ValidationError
from rdv.core.geo import Place, resolve_place
from rdv.patients.models import Patient
from rdv.patients.queries import own_patient, patient_for_user
from rdv.scheduling.models import AppointmentType
from rdv.scheduling.queries import AvailabilityQuery

DEFAULT_DAYS = 14


@dataclass(frozen=True)
class SearchRequest:
    near: str
    radius_km: float = 25
    date_from: date | None = None
    date_to: date | None = None
    appointment_type: str | None = None
    language: str | None = None
    family_doctor: bool = False
    patient_id: int | None = None
    limit: int = 20
    offset: int = 0


def place_or_error(text: str) -> Place:
    place = resolve_place(text)
    if place is None:
        raise ValidationError(
            _("Unknown place. Enter a Quebec municipality, a postal code or “latitude,longitude”."),
            field="near",
            code="unknown_place",
        )
    return place


def search_days(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """The local days to search, checked: in order, not all past, not too far or too long."""
    today = clock.local_today()
    furthest = today + timedelta(days=settings.SEARCH_MAX_AHEAD_DAYS)
    for field, value in (("from", date_from), ("to", date_to)):
        if value is not None and value > furthest:
            raise ValidationError(
                _("Search at most %(days)d days ahead.") % {"days": settings.SEARCH_MAX_AHEAD_DAYS},
                field=field,
                code="date_range",
            )
    first = date_from or today
    last = date_to or first + timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise ValidationError(
            _("The end date must not be before the start date."), field="to", code="date_range"
        )
    if last < today:
        raise ValidationError(_("The dates are in the past."), field="to", code="date_range")
    first = max(first, today)
    if (last - first).days >= settings.SEARCH_MAX_DAYS:
        raise ValidationError(
            _("Search at most %(days)d days at a time.") % {"days": settings.SEARCH_MAX_DAYS},
            field="to",
            code="date_range",
        )
    return first, last


def family_doctor_scope(
    request: SearchRequest, user: User | None
) -> tuple[frozenset[int], frozenset[int] | None]:
    """(reserved slots' practitioners the searcher may see, practitioners to restrict to)."""
    if user is None:
        if request.family_doctor or request.patient_id is not None:
            raise ValidationError(
                _("Sign in to search your family doctor's availability."),
                field="family_doctor",
                code="sign_in_required",
            )
        return frozenset(), None
    if request.patient_id is not None:
        patient: Patient | None = patient_for_user(user, request.patient_id)
    else:
        patient = own_patient(user)
    family_doctor_id = patient.family_doctor_id if patient is not None else None
    reserved = frozenset({family_doctor_id}) if family_doctor_id is not None else frozenset()
    if not request.family_doctor:
        return reserved, None
    if family_doctor_id is None:
        raise ValidationError(
            _("No family doctor is registered for this patient."),
            field="family_doctor",
            code="no_family_doctor",
        )
    return reserved, frozenset({family_doctor_id})


def availability_query(request: SearchRequest, user: User | None) -> AvailabilityQuery:
    """Check a search and return the query to run; raises ValidationError naming the field."""
    place = place_or_error(request.near)
    if not 0 < request.radius_km <= settings.SEARCH_MAX_RADIUS_KM:
        raise ValidationError(
            _("Choose a distance between 1 and %(km)d km.") % {"km": settings.SEARCH_MAX_RADIUS_KM},
            field="radius_km",
            code="radius",
        )
    first, last = search_days(request.date_from, request.date_to)
    kind = request.appointment_type
    if kind is not None and kind not in AppointmentType.values:
        raise ValidationError(_("Unknown appointment type."), field="type", code="unknown_type")
    reserved, practitioner_ids = family_doctor_scope(request, user)
    start_from, start_before = clock.local_day_bounds(first, last)
    return AvailabilityQuery(
        place=place,
        radius_km=request.radius_km,
        start_from=max(start_from, clock.now()),
        start_before=start_before,
        appointment_type=kind,
        language=request.language,
        practitioner_ids=practitioner_ids,
        reserved_for_practitioner_ids=reserved,
        viewer_id=user.pk if user is not None else None,
        limit=request.limit,
        offset=request.offset,
    )
