"""Reads of slots and appointments that more than one caller needs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.clinics.models import Clinic, Practitioner, PractitionerLanguage
from rdv.clinics.queries import StaffContext, clinic_distances
from rdv.core import clock
from rdv.core.errors import NotFound
from rdv.core.geo import Place
from rdv.patients.models import Patient
from rdv.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Slot,
    SlotStatus,
    Visibility,
)


def type_fits(date_of_birth: date, appointment_type: str, start: datetime) -> bool:
    """Whether a person born that day may take a slot of this type starting then: the
    0-5 years type is for children who have not turned six on the day of the visit."""
    if appointment_type != AppointmentType.CHILD_0_5:
        return True
    visit_day = clock.local_date(start)
    return visit_day < _add_years(date_of_birth, 6)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def open_to_public(now: datetime) -> Q:
    """Slots anyone may see and book: public ones, and reserved ones whose release time
    (`public_from`) has come. The one definition every visibility check uses."""
    return Q(visibility=Visibility.PUBLIC) | Q(public_from__lte=now)


def is_open_to_public(slot: Slot, now: datetime) -> bool:
    return slot.visibility == Visibility.PUBLIC or (
        slot.public_from is not None and slot.public_from <= now
    )


def appointments_for_user(user: User) -> QuerySet[Appointment]:
    """Appointments of every patient the user manages, soonest first."""
    return (
        Appointment.objects.filter(patient__account=user)
        .select_related("slot", "slot__clinic", "slot__practitioner", "patient")
        .order_by("slot__start", "pk")
    )


def appointment_for_user(user: User, appointment_id: int) -> Appointment:
    """One of the user's appointments; anyone else's answers NotFound."""
    found = appointments_for_user(user).filter(pk=appointment_id).first()
    if found is None:
        raise NotFound(_("Appointment not found."), code="appointment_not_found")
    return found


@dataclass(frozen=True)
class AvailabilityQuery:
    place: Place
    radius_km: float
    start_from: datetime  # UTC, inclusive
    start_before: datetime  # UTC, exclusive
    appointment_type: str | None = None
    language: str | None = None
    practitioner_ids: frozenset[int] | None = None  # e.g. "my family doctor only"
    reserved_for_practitioner_ids: frozenset[int] = frozenset()  # reserved slots I may see
    viewer_id: int | None = None  # the signed-in user: their own held slot stays visible
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True)
class FoundSlot:
    slot_id: int
    start: datetime
    end: datetime
    appointment_type: str
    clinic: Clinic
    distance_km: float
    practitioner: Practitioner
    languages: tuple[str, ...]

    @property
    def type_label(self) -> str:
        return str(AppointmentType(self.appointment_type).label)


@dataclass(frozen=True)
class AvailabilityPage:
    results: list[FoundSlot]
    has_more: bool


# One small index scan per clinic (the partial index on (clinic_id, start) WHERE free):
# reading "the first N free slots of this clinic" is cheap; "the first N of these 80
# clinics together" is not. DESIGN.md measured the difference at about 10x. Visibility
# (open_to_public, below in SQL) filters the rows the scan reads, with `now` bound once.
_PER_CLINIC = """
    SELECT s.id, s.clinic_id, s.practitioner_id, s.start, s."end", s.appointment_type
    FROM scheduling_slot s
    WHERE s.clinic_id = {clinic} AND s.status = 'free'
      AND s.start >= %(start_from)s AND s.start < %(start_before)s
      AND (s.hold_expires_at IS NULL OR s.hold_expires_at <= %(now)s
           OR s.hold_owner_id = %(viewer_id)s)
      AND (s.visibility = 'public' OR s.public_from <= %(now)s {reserved})
      AND EXISTS (SELECT 1 FROM clinics_practitioner p
                  WHERE p.id = s.practitioner_id AND p.is_active)
      {type_filter} {practitioner_filter}
    ORDER BY s.start, s.id
    LIMIT %(per_clinic)s
"""


def _scan_sql(vendor: str, query: AvailabilityQuery, params: dict[str, Any]) -> str:
    postgres = vendor == "postgresql"

    def id_list(name: str, ids: frozenset[int]) -> str:
        if postgres:
            params[name] = sorted(ids)
            return f"%({name})s::bigint[]"
        return "(" + ",".join(str(int(i)) for i in sorted(ids)) + ")"

    reserved = ""
    if query.reserved_for_practitioner_ids:
        ids = id_list("reserved_ids", query.reserved_for_practitioner_ids)
        reserved = (
            f"OR s.practitioner_id = ANY({ids})" if postgres else f"OR s.practitioner_id IN {ids}"
        )
    type_filter = ""
    if query.appointment_type:
        params["appointment_type"] = query.appointment_type
        type_filter = "AND s.appointment_type = %(appointment_type)s"
    practitioner_filter = ""
    if query.practitioner_ids is not None:
        ids = id_list("practitioner_ids", query.practitioner_ids)
        practitioner_filter = (
            f"AND s.practitioner_id = ANY({ids})" if postgres else f"AND s.practitioner_id IN {ids}"
        )
    return _PER_CLINIC.format(
        clinic="c.id" if postgres else "%(clinic_id)s",
        reserved=reserved,
        type_filter=type_filter,
        practitioner_filter=practitioner_filter,
    )


def _scan(
    query: AvailabilityQuery, distances: dict[int, float], wanted: int
) -> list[tuple[Any, ...]]:
    """The first `wanted` rows (id, clinic_id, practitioner_id, start, end, type) in result
    order. On PostgreSQL the merge happens in SQL, so only one page crosses the wire."""
    clinic_ids = list(distances)
    # Django's own adaptation: on SQLite datetimes compare as text, in its stored format.
    adapt = connection.ops.adapt_datetimefield_value
    params: dict[str, Any] = {
        "start_from": adapt(query.start_from),
        "start_before": adapt(query.start_before),
        "now": adapt(clock.now()),
        "viewer_id": query.viewer_id if query.viewer_id is not None else -1,
        "per_clinic": wanted,
    }
    inner = _scan_sql(connection.vendor, query, params)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            params["clinic_ids"] = clinic_ids
            params["distances"] = [distances[c] for c in clinic_ids]
            # Constant fragments and int() ids only; request values are bound parameters.
            sql = (
                "SELECT x.* FROM unnest(%(clinic_ids)s::bigint[], %(distances)s::float8[])"  # noqa: S608  # nosec B608
                f" AS c(id, distance) CROSS JOIN LATERAL ({inner}) AS x"
                " ORDER BY x.start, c.distance, x.id LIMIT %(per_clinic)s"
            )
            cursor.execute(sql, params)
            return list(cursor.fetchall())
        rows: list[tuple[Any, ...]] = []
        for clinic_id in clinic_ids:
            cursor.execute(inner, {**params, "clinic_id": clinic_id})
            rows.extend(cursor.fetchall())
    rows.sort(key=lambda r: (_as_utc(r[3]), distances[r[1]], r[0]))
    return rows[:wanted]


def _language_filter(query: AvailabilityQuery, clinic_ids: list[int]) -> frozenset[int] | None:
    """Narrow the practitioners to those who speak the language (None: no narrowing)."""
    if not query.language:
        return query.practitioner_ids
    speakers = PractitionerLanguage.objects.filter(
        code=query.language, practitioner__clinic_id__in=clinic_ids
    ).values_list("practitioner_id", flat=True)
    ids = frozenset(speakers)
    if query.practitioner_ids is not None:
        ids &= query.practitioner_ids
    return ids


def search_availability(query: AvailabilityQuery) -> AvailabilityPage:
    """Free slots near a place, earliest first, then nearest, then by id; paginated."""
    distances = clinic_distances(
        latitude=query.place.latitude,
        longitude=query.place.longitude,
        radius_km=query.radius_km,
    )
    if not distances:
        return AvailabilityPage(results=[], has_more=False)
    practitioner_ids = _language_filter(query, list(distances))
    if practitioner_ids is not None and not practitioner_ids:
        return AvailabilityPage(results=[], has_more=False)
    query = AvailabilityQuery(**{**query.__dict__, "practitioner_ids": practitioner_ids})
    rows = _scan(query, distances, wanted=query.offset + query.limit + 1)
    page = rows[query.offset : query.offset + query.limit]
    clinics = Clinic.objects.in_bulk({r[1] for r in page})
    practitioners = Practitioner.objects.in_bulk({r[2] for r in page})
    languages: dict[int, list[str]] = {}
    for practitioner_id, code in (
        PractitionerLanguage.objects.filter(practitioner_id__in=practitioners)
        .order_by("code")
        .values_list("practitioner_id", "code")
    ):
        languages.setdefault(practitioner_id, []).append(code)
    results = [
        FoundSlot(
            slot_id=r[0],
            start=_as_utc(r[3]),
            end=_as_utc(r[4]),
            appointment_type=r[5],
            clinic=clinics[r[1]],
            distance_km=round(distances[r[1]], 1),
            practitioner=practitioners[r[2]],
            languages=tuple(languages.get(r[2], [])),
        )
        for r in page
    ]
    return AvailabilityPage(results=results, has_more=len(rows) > query.offset + query.limit)


def _as_utc(value: datetime | str) -> datetime:
    """Raw SQL on SQLite returns text; on PostgreSQL an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# --- Clinic staff (always through a StaffContext) ---------------------------------------


def clinic_appointments(ctx: StaffContext) -> QuerySet[Appointment]:
    return (
        Appointment.objects.filter(slot__clinic=ctx.clinic)
        .select_related("slot", "slot__practitioner", "patient")
        .order_by("slot__start", "pk")
    )


def clinic_day(ctx: StaffContext, day: date) -> QuerySet[Appointment]:
    start, end = clock.local_day_bounds(day, day)
    return clinic_appointments(ctx).filter(slot__start__gte=start, slot__start__lt=end)


def clinic_appointment(ctx: StaffContext, appointment_id: int) -> Appointment:
    found = clinic_appointments(ctx).filter(pk=appointment_id).first()
    if found is None:
        raise NotFound(_("Appointment not found."), code="appointment_not_found")
    return found


def clinic_patient(ctx: StaffContext, patient_id: int) -> Patient:
    """A patient known to this clinic: booked there, registered with one of its doctors,
    or one of its own files of callers without an account."""
    known = Patient.objects.filter(
        Q(appointments__slot__clinic=ctx.clinic)
        | Q(family_doctor__clinic=ctx.clinic)
        | Q(record_clinic=ctx.clinic),
        pk=patient_id,
    ).distinct()
    found = known.first()
    if found is None:
        raise NotFound(_("Patient not found."), code="patient_not_found")
    return found


def visible_slot(user: User | None, slot_id: int) -> Slot:
    """A bookable-looking slot as this visitor may see it: open to the public (or
    released), or reserved for the family doctor of one of the user's patients. Anything
    else answers NotFound."""
    slot = (
        Slot.objects.select_related("clinic", "practitioner")
        .filter(pk=slot_id, clinic__is_active=True, practitioner__is_active=True)
        .exclude(status=SlotStatus.WITHDRAWN)
        .first()
    )
    if slot is None or (
        not is_open_to_public(slot, clock.now())
        and (
            user is None
            or not Patient.objects.filter(
                account=user, family_doctor_id=slot.practitioner_id
            ).exists()
        )
    ):
        raise NotFound(_("Slot not found."), code="slot_not_found")
    return slot


def visitor_digest(visitor_token: str) -> str:
    """What a slot stores of the secret that lets a signed-out visitor hold it."""
    return hashlib.sha256(visitor_token.encode()).hexdigest()


def hold_seconds_left(slot: Slot, *, user: User | None, visitor_token: str | None) -> int:
    """How long the slot stays held for this user or visitor (0: not held for them)."""
    if slot.hold_expires_at is None:
        return 0
    if user is not None:
        mine = slot.hold_owner_id == user.pk
    else:
        mine = visitor_token is not None and slot.hold_visitor == visitor_digest(visitor_token)
    if not mine:
        return 0
    return max(0, int((slot.hold_expires_at - clock.now()).total_seconds()))


def attendance_at_clinic(ctx: StaffContext, patient_id: int) -> dict[str, Any]:
    """A patient's past visits at this clinic: how many were seen, how many missed, and
    the dates of the latest absences (the front desk's "no-show history")."""
    past = clinic_appointments(ctx).filter(patient_id=patient_id, slot__start__lt=clock.now())
    seen = past.filter(status__in=[AppointmentStatus.ARRIVED, AppointmentStatus.FULFILLED])
    missed = past.filter(status=AppointmentStatus.NOSHOW).order_by("-slot__start")
    return {
        "seen": seen.count(),
        "missed": missed.count(),
        "latest_missed": [a.slot.start for a in missed[:5]],
    }


def clinic_free_slots_for(
    ctx: StaffContext,
    patient: Patient,
    *,
    first_day: date,
    days: int,
    practitioner_id: int | None = None,
    limit: int = 200,
) -> list[Slot]:
    """The clinic's free, unheld future times this patient may take, over `days` local
    days: those open to the public (or released), and those reserved for their family
    doctor's patients."""
    now = clock.now()
    found = _clinic_free_slots(ctx, first_day, days, practitioner_id).filter(
        open_to_public(now) | Q(practitioner_id=patient.family_doctor_id)
    )
    return [
        s for s in found[:limit] if type_fits(patient.date_of_birth, s.appointment_type, s.start)
    ]


def clinic_slots_for_move(
    ctx: StaffContext,
    appointment: Appointment,
    *,
    day: date,
    practitioner_id: int | None = None,
    limit: int = 200,
) -> list[Slot]:
    """Where the clinic may move this appointment on one local day: any free, unheld future
    time of the clinic (any practitioner, any type, reserved ones too: the clinic decides
    for its own patients) whose type fits the patient. See services.move_for_clinic."""
    patient = appointment.patient
    found = _clinic_free_slots(ctx, day, 1, practitioner_id).exclude(pk=appointment.slot_id)
    return [
        s for s in found[:limit] if type_fits(patient.date_of_birth, s.appointment_type, s.start)
    ]


def _clinic_free_slots(
    ctx: StaffContext, first_day: date, days: int, practitioner_id: int | None
) -> QuerySet[Slot]:
    """The clinic's free, unheld future times over `days` local days, soonest first."""
    now = clock.now()
    start, end = clock.local_day_bounds(first_day, first_day + timedelta(days=days - 1))
    found = (
        Slot.objects.filter(
            clinic=ctx.clinic,
            status=SlotStatus.FREE,
            start__gt=max(start, now),
            start__lt=end,
            practitioner__is_active=True,
        )
        .filter(Q(hold_expires_at__isnull=True) | Q(hold_expires_at__lte=now))
        .select_related("practitioner")
        .order_by("start", "pk")
    )
    if practitioner_id is not None:
        found = found.filter(practitioner_id=practitioner_id)
    return found
