"""Reads straight from the bench database: picking contended slots, checking invariants
after the contention phase, and the plan of one search. Needs Django set up."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from rdv.clinics.models import Clinic
from rdv.clinics.queries import clinics_near
from rdv.core import clock
from rdv.core.geo import resolve_place
from rdv.scheduling.models import (
    ACTIVE_APPOINTMENT_STATUSES,
    Appointment,
    AppointmentType,
    Slot,
    SlotStatus,
    Visibility,
)
from rdv.scheduling.queries import AvailabilityQuery, search_availability


def known_cities(names: tuple[str, ...]) -> list[str]:
    """The names the app resolves to a place (a typo here would only measure 422s)."""
    return [name for name in names if resolve_place(name) is not None]


def contended_slots(municipality: str, count: int) -> list[int]:
    """`count` bookable public slots of the clinic with the most of them in `municipality`,
    at least a day ahead so no cut-off or start time interferes."""
    now = clock.now()
    bookable = Slot.objects.filter(
        status=SlotStatus.FREE,
        visibility=Visibility.PUBLIC,
        hold_owner__isnull=True,
        start__gt=now + timedelta(days=1),
        start__lt=now + timedelta(days=8),
    ).exclude(appointment_type=AppointmentType.CHILD_0_5)
    clinic = (
        Clinic.objects.filter(municipality_name=municipality, slots__in=bookable)
        .annotate(free=Count("slots"))
        .order_by("-free", "pk")
        .first()
    )
    if clinic is None:
        return []
    ids = bookable.filter(clinic=clinic).order_by("start", "pk").values_list("pk", flat=True)
    return list(ids[:count])


@dataclass(frozen=True)
class Integrity:
    """What the database says after everyone tried to book the same slots."""

    slots: int
    booked_slots: int
    active_appointments: int
    slots_with_two_active: int  # must be 0 (DESIGN.md invariant 1)
    db_slots_with_two_active: int  # the same over the whole database
    db_booked_without_appointment: int  # booked slot, no active appointment
    db_active_on_free_slot: int  # active appointment on a free slot


_INTEGRITY_SQL = """
    WITH active AS (
        SELECT slot_id, count(*) AS n FROM scheduling_appointment
        WHERE status = ANY(%(active)s) GROUP BY slot_id
    )
    SELECT
        (SELECT count(*) FROM active WHERE n > 1),
        (SELECT count(*) FROM scheduling_slot s
         WHERE s.status = 'booked' AND NOT EXISTS (SELECT 1 FROM active a WHERE a.slot_id = s.id)),
        (SELECT count(*) FROM active a JOIN scheduling_slot s ON s.id = a.slot_id
         WHERE s.status = 'free')
"""


def integrity(slot_ids: list[int]) -> Integrity:
    active = Appointment.objects.filter(
        slot_id__in=slot_ids, status__in=ACTIVE_APPOINTMENT_STATUSES
    )
    doubled = active.values("slot_id").annotate(n=Count("pk")).filter(n__gt=1).count()
    with connection.cursor() as cursor:
        cursor.execute(_INTEGRITY_SQL, {"active": list(ACTIVE_APPOINTMENT_STATUSES)})
        row = cursor.fetchone()
    whole = tuple(int(v) for v in row) if row else (-1, -1, -1)
    return Integrity(
        slots=len(slot_ids),
        booked_slots=Slot.objects.filter(pk__in=slot_ids, status=SlotStatus.BOOKED).count(),
        active_appointments=active.count(),
        slots_with_two_active=doubled,
        db_slots_with_two_active=whole[0],
        db_booked_without_appointment=whole[1],
        db_active_on_free_slot=whole[2],
    )


def explain_search(city: str, radius_km: float) -> tuple[int, list[str]]:
    """EXPLAIN (ANALYZE, BUFFERS) of the per-clinic LATERAL scan of one real search.

    The SQL is captured from the app's own search function (so it cannot drift from what
    the server runs), then explained. Returns the clinic count and the plan lines.
    """
    place = resolve_place(city)
    if place is None:
        return 0, [f"unknown place {city!r}"]
    today = clock.local_today()
    start_from, start_before = clock.local_day_bounds(today, today + timedelta(days=13))
    query = AvailabilityQuery(
        place=place,
        radius_km=radius_km,
        start_from=max(start_from, clock.now()),
        start_before=start_before,
    )
    with CaptureQueriesContext(connection) as captured:
        search_availability(query)
    scan = next((q["sql"] for q in captured.captured_queries if "LATERAL" in q["sql"]), None)
    if scan is None:
        return 0, ["no LATERAL query was run (no clinic in range?)"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + scan)
        plan = [str(row[0]) for row in cursor.fetchall()]
    nearby = clinics_near(latitude=place.latitude, longitude=place.longitude, radius_km=radius_km)
    return len(nearby), plan


def server_version() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
    return str(row[0]) if row else "?"
