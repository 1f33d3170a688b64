"""Reads of walk-in waves: the one door to a wave or a walk-in by id, and the live queue.

Everything is scoped by the StaffContext's clinic: another clinic's wave or walk-in is
"not found", exactly like one that does not exist (DESIGN.md invariant 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import F, Prefetch, QuerySet
from django.utils.translation import gettext_lazy as _

from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import NotFound
from rdv.walkin.models import WalkIn, WalkInStatus, Wave


def clinic_waves(ctx: StaffContext) -> QuerySet[Wave]:
    return Wave.objects.filter(clinic=ctx.clinic)


def wave_for(ctx: StaffContext, wave_id: int) -> Wave:
    """The clinic's wave, or NotFound."""
    wave = clinic_waves(ctx).select_related("practitioner").filter(pk=wave_id).first()
    if wave is None:
        raise NotFound(_("Wave not found."), code="wave_not_found")
    return wave


def walk_in_for(ctx: StaffContext, walk_in_id: int) -> WalkIn:
    """The clinic's walk-in, or NotFound."""
    walk_in = (
        WalkIn.objects.select_related("wave").filter(pk=walk_in_id, wave__clinic=ctx.clinic).first()
    )
    if walk_in is None:
        raise NotFound(_("Person not found."), code="walk_in_not_found")
    return walk_in


def estimated_time(wave: Wave, place: int, now: datetime) -> datetime:
    """When place `place` should be seen: the wave's time shared evenly among its places
    (place 1 at the start), never earlier than now."""
    per_place = (wave.end - wave.start) / wave.capacity
    return max(now, wave.start + (place - 1) * per_place)


@dataclass(frozen=True)
class QueueEntry:
    walk_in: WalkIn
    # Among everyone waiting at the clinic that day; None once called, seen or gone.
    position: int | None
    estimate: datetime | None


@dataclass(frozen=True)
class WaveQueue:
    wave: Wave
    entries: list[QueueEntry]

    @property
    def is_over(self) -> bool:
        return self.wave.end <= clock.now()

    @property
    def has_waiting(self) -> bool:
        return any(e.position is not None for e in self.entries)


@dataclass(frozen=True)
class DayQueue:
    day: date
    waves: list[WaveQueue]

    @property
    def waiting(self) -> list[QueueEntry]:
        """Everyone waiting, in the order they will be called."""
        return [e for w in self.waves for e in w.entries if e.position is not None]


def queue(ctx: StaffContext, day: date, *, wave_id: int | None = None) -> DayQueue:
    """The clinic's waves of one local day with their walk-ins (by place), and each
    waiting person's position and estimated time.

    The queue runs by wave start, then place: someone in the 08:30 wave waits behind
    everyone still waiting from 08:00. With `wave_id`, the positions are still counted
    over the whole day, but only that wave is returned.
    """
    start, end = clock.local_day_bounds(day, day)
    waves = (
        clinic_waves(ctx)
        .filter(start__gte=start, start__lt=end)
        .select_related("practitioner")
        .prefetch_related(Prefetch("walk_ins", queryset=WalkIn.objects.order_by("place")))
        .order_by("start", "pk")
    )
    now = clock.now()
    position = 0
    found = []
    for wave in waves:
        entries = []
        for walk_in in wave.walk_ins.all():
            if walk_in.status == WalkInStatus.WAITING:
                position += 1
                entry = QueueEntry(walk_in, position, estimated_time(wave, walk_in.place, now))
            else:
                entry = QueueEntry(walk_in, None, None)
            entries.append(entry)
        if wave_id is None or wave.pk == wave_id:
            found.append(WaveQueue(wave, entries))
    return DayQueue(day, found)


def next_wave_with_room(ctx: StaffContext, wave: Wave) -> Wave | None:
    """The next wave of the same local day and practitioner (or clinic-wide) that still has
    a place: what the front desk offers when this one is full."""
    day = clock.local_date(wave.start)
    _start, day_end = clock.local_day_bounds(day, day)
    return (
        clinic_waves(ctx)
        .filter(
            practitioner=wave.practitioner,
            start__gt=wave.start,
            start__lt=day_end,
            end__gt=clock.now(),
        )
        .filter(taken__lt=F("capacity"))
        .order_by("start", "pk")
        .first()
    )
