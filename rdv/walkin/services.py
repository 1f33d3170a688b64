"""Every write about walk-ins: opening a day's waves, giving out a place, calling people.

Only the front desk (clinic administrators and receptionists) does these; each function
takes a StaffContext, so nothing here can reach another clinic's waves, owns one
transaction, and appends an audit entry for what it changed.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from rdv.clinics.models import FRONT_DESK_ROLES, Clinic, Practitioner
from rdv.clinics.queries import StaffContext
from rdv.clinics.services import audit_staff_action
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.patients.services import normalise_phone
from rdv.scheduling.rules import wall_clock_instant
from rdv.walkin import queries
from rdv.walkin.models import CAPACITY_MAX, WalkIn, WalkInStatus, Wave

WAVE_MINUTES_MIN = 5
WAVE_MINUTES_MAX = 240
NAME_MAX = 100

# Which status a walk-in may move to, from which.
STATUS_FROM: dict[str, tuple[str, ...]] = {
    WalkInStatus.CALLED: (WalkInStatus.WAITING,),
    WalkInStatus.SEEN: (WalkInStatus.CALLED,),
    WalkInStatus.LEFT: (WalkInStatus.WAITING, WalkInStatus.CALLED),
}


def _require_front_desk(ctx: StaffContext) -> None:
    """403 for other members. Called after any lookup by id: another clinic's wave or
    walk-in is then 404 for every member, never 403 (DESIGN.md invariant 6)."""
    if ctx.role not in FRONT_DESK_ROLES:
        raise PermissionDenied(_("Only the front desk manages walk-ins."), code="role")


def view_queue(ctx: StaffContext, day: date, *, wave_id: int | None = None) -> queries.DayQueue:
    """The day's waves and queue (rdv.walkin.queries.queue); the read is audited, once per
    page shown, since it names the people waiting."""
    _require_front_desk(ctx)
    with transaction.atomic():
        found = queries.queue(ctx, day, wave_id=wave_id)
        audit_staff_action(ctx, "walkin.queue.view", "walkin_day", day.isoformat())
    return found


def view_wave(ctx: StaffContext, wave_id: int) -> queries.WaveQueue:
    """One wave of the clinic with its walk-ins, their places in the day's queue and
    estimated times (NotFound for another clinic's wave); an audited read."""
    with transaction.atomic():
        wave = queries.wave_for(ctx, wave_id)
        _require_front_desk(ctx)
        day = queries.queue(ctx, clock.local_date(wave.start), wave_id=wave.pk)
        audit_staff_action(ctx, "walkin.wave.view", "walkin_wave", wave.pk)
    return day.waves[0]


def _wave_starts(
    day: date, first_start: time, last_start: time, minutes: int
) -> list[tuple[datetime, datetime]]:
    """(start, end) instants of waves every `minutes` of local wall-clock time from
    `first_start` to `last_start` included. A start the clocks skip (spring forward) gives
    no wave; one that happens twice (fall back) is taken at its first occurrence; each
    wave lasts its real `minutes`."""
    waves = []
    step = timedelta(minutes=minutes)
    moment = datetime.combine(day, first_start)
    last = datetime.combine(day, last_start)
    while moment <= last:
        start = wall_clock_instant(moment)
        if start is not None:
            waves.append((start, start + step))
        moment += step
    return waves


def _check_wave_request(
    day: date, first_start: time, last_start: time, minutes: int, capacity: int
) -> None:
    if day < clock.local_today():
        raise ValidationError(
            _("Waves can be opened for today or a later day only."), field="day", code="past_day"
        )
    if not WAVE_MINUTES_MIN <= minutes <= WAVE_MINUTES_MAX:
        raise ValidationError(
            _("A wave lasts from %(min)d to %(max)d minutes.")
            % {"min": WAVE_MINUTES_MIN, "max": WAVE_MINUTES_MAX},
            field="minutes",
            code="wave_minutes",
        )
    if not 1 <= capacity <= CAPACITY_MAX:
        raise ValidationError(
            _("A wave takes from 1 to %(max)d patients.") % {"max": CAPACITY_MAX},
            field="capacity",
            code="wave_capacity",
        )
    if last_start < first_start:
        raise ValidationError(
            _("The last wave cannot start before the first."),
            field="last_start",
            code="wave_order",
        )


def _practitioner(ctx: StaffContext, practitioner_id: int | None) -> Practitioner | None:
    if practitioner_id is None:
        return None
    found = Practitioner.objects.filter(
        pk=practitioner_id, clinic=ctx.clinic, is_active=True
    ).first()
    if found is None:
        raise NotFound(_("Practitioner not found."), code="practitioner_not_found")
    return found


def open_waves(
    ctx: StaffContext,
    *,
    day: date,
    first_start: time,
    last_start: time,
    minutes: int = 30,
    capacity: int,
    practitioner_id: int | None = None,
) -> list[Wave]:
    """Open one local day's waves: one every `minutes` from `first_start` to `last_start`
    (local wall-clock times, both included), each taking `capacity` walk-ins, for one
    practitioner or clinic-wide.

    All or nothing: if any of them would overlap a wave already open for the same
    practitioner (or clinic-wide, for clinic-wide waves), none is opened (409). The clinic
    row is locked meanwhile, so two desks opening waves at once cannot both pass the check.
    """
    practitioner = _practitioner(ctx, practitioner_id)
    _require_front_desk(ctx)
    _check_wave_request(day, first_start, last_start, minutes, capacity)
    spans = _wave_starts(day, first_start, last_start, minutes)
    if not spans:
        raise ValidationError(
            _("No wave starts at these times on this day."), field="first_start", code="no_wave"
        )
    now = clock.now()
    if spans[-1][1] <= now:
        raise ValidationError(
            _("These waves would already be over."), field="last_start", code="waves_past"
        )
    with transaction.atomic():
        Clinic.objects.select_for_update().get(pk=ctx.clinic.pk)
        existing = list(
            queries.clinic_waves(ctx)
            .filter(
                practitioner=practitioner,
                start__lt=spans[-1][1],
                end__gt=spans[0][0],
            )
            .order_by("start")
        )
        for start, end in spans:
            for other in existing:
                if other.start < end and other.end > start:
                    raise Conflict(
                        _("A wave from %(start)s to %(end)s is already open: choose other times.")
                        % {
                            "start": other.start.astimezone(clock.LOCAL_TZ).strftime("%H:%M"),
                            "end": other.end.astimezone(clock.LOCAL_TZ).strftime("%H:%M"),
                        },
                        code="waves_overlap",
                    )
        waves = Wave.objects.bulk_create(
            [
                Wave(
                    clinic=ctx.clinic,
                    practitioner=practitioner,
                    start=start,
                    end=end,
                    capacity=capacity,
                    created_by=ctx.user,
                    created_at=now,
                )
                for start, end in spans
            ]
        )
        for wave in waves:
            audit_staff_action(ctx, "walkin.wave.open", "walkin_wave", wave.pk)
    return waves


def _clean_name(value: str, field: str) -> str:
    value = " ".join(value.split())
    if not value:
        raise ValidationError(_("This field is required."), field=field, code="required")
    if len(value) > NAME_MAX:
        raise ValidationError(
            _("At most %(max)d characters.") % {"max": NAME_MAX}, field=field, code="too_long"
        )
    return value


def add_walk_in(
    ctx: StaffContext, wave_id: int, *, first_name: str, last_name: str, phone: str = ""
) -> WalkIn:
    """Give the next place of the wave to someone who just walked in.

    The place is taken by one compare-and-set on the wave's counter (`taken = taken + 1
    WHERE taken < capacity`): the database, not this code, decides who gets the last
    place, on SQLite and PostgreSQL alike. No row updated means the wave is full (409)
    and nothing is written. The new walk-in's place is the counter's new value, so places
    are 1, 2, … without gaps; a place is never given twice (unique (wave, place)).
    """
    now = clock.now()
    with transaction.atomic():
        wave = queries.wave_for(ctx, wave_id)
        _require_front_desk(ctx)
        first_name = _clean_name(first_name, "first_name")
        last_name = _clean_name(last_name, "last_name")
        phone = normalise_phone(phone)
        if wave.end <= now:
            raise Conflict(
                _("This wave is over: add the person to a later wave."), code="wave_over"
            )
        taken = Wave.objects.filter(pk=wave.pk, taken__lt=F("capacity")).update(
            taken=F("taken") + 1
        )
        if taken == 0:
            raise Conflict(
                ngettext_lazy(
                    "This wave is full (%(capacity)d patient). "
                    "Offer the next wave or an appointment.",
                    "This wave is full (%(capacity)d patients). "
                    "Offer the next wave or an appointment.",
                    "capacity",
                )
                % {"capacity": wave.capacity},
                code="wave_full",
            )
        # Our UPDATE holds the row until commit: nobody else moved the counter since.
        place = Wave.objects.filter(pk=wave.pk).values_list("taken", flat=True).get()
        walk_in = WalkIn.objects.create(
            wave=wave,
            place=place,
            first_name=first_name,
            last_name=last_name,
            phone=phone,
            arrived_at=now,
            created_by=ctx.user,
        )
        audit_staff_action(ctx, "walkin.add", "walk_in", walk_in.pk)
    return walk_in


def _move(ctx: StaffContext, walk_in: WalkIn, status: str, now: datetime) -> bool:
    """Compare-and-set one walk-in's status; False if someone else moved it first."""
    stamps: dict[str, datetime] = (
        {"called_at": now} if status == WalkInStatus.CALLED else {"done_at": now}
    )
    moved = WalkIn.objects.filter(pk=walk_in.pk, status__in=STATUS_FROM[status]).update(
        status=status, **stamps
    )
    if moved:
        audit_staff_action(ctx, f"walkin.{status}", "walk_in", walk_in.pk)
    return bool(moved)


def call_next(ctx: StaffContext, wave_id: int) -> WalkIn:
    """Call the waiting person with the lowest place of the wave (409 if nobody waits).

    Two desks calling at once call two different people: each call is a compare-and-set
    from "waiting", and a desk that loses one tries the next place.
    """
    now = clock.now()
    with transaction.atomic():
        wave = queries.wave_for(ctx, wave_id)
        _require_front_desk(ctx)
        waiting = WalkIn.objects.filter(wave=wave, status=WalkInStatus.WAITING).order_by("place")
        for walk_in in waiting:
            if _move(ctx, walk_in, WalkInStatus.CALLED, now):
                walk_in.refresh_from_db()
                return walk_in
    raise Conflict(_("Nobody is waiting in this wave."), code="nobody_waiting")


def set_walk_in_status(ctx: StaffContext, walk_in_id: int, status: str) -> WalkIn:
    """Called (from waiting), seen (once called), or left (before being seen)."""
    now = clock.now()
    with transaction.atomic():
        walk_in = queries.walk_in_for(ctx, walk_in_id)
        _require_front_desk(ctx)
        if status not in STATUS_FROM:
            raise ValidationError(
                _("Choose called, seen or left."), field="status", code="invalid_status"
            )
        if not _move(ctx, walk_in, status, now):
            walk_in.refresh_from_db()
            raise Conflict(
                _("This person is %(current)s: they cannot be marked %(wanted)s.")
                % {
                    "current": str(WalkInStatus(walk_in.status).label).lower(),
                    "wanted": str(WalkInStatus(status).label).lower(),
                },
                code="walk_in_status",
            )
    walk_in.refresh_from_db()
    return walk_in
