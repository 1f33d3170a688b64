"""A clinic's activity over a period: bookings, cancellations, absences, how full its
published times were, and how far ahead patients book, in all and week by week.

No patient is named or counted individually here, so reading the figures is not an
audited read of patient data. Counts are database aggregates (grouped by local week);
the lead-time percentiles are computed from one list of (visit, booking) instants. Days
and weeks are America/Toronto's; a week starts on Monday. docs/clinic-statistics.md
defines every figure.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncWeek
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from rdv.clinics.exports import spreadsheet_text
from rdv.clinics.models import Practitioner
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import NotFound, ValidationError
from rdv.scheduling.models import (
    Appointment,
    AppointmentStatus,
    CancelledBy,
    Slot,
    SlotStatus,
)

DEFAULT_DAYS = 30
PERIOD_DAYS_MAX = 366
# How far from today a period may reach: five years of history, a year ahead (slots are
# published 60 days ahead); also keeps a typed year 1 or 9999 away from date arithmetic.
REACH_BACK = timedelta(days=5 * 366)
REACH_AHEAD = timedelta(days=366)
SECONDS_PER_DAY = 86_400
ATTENDED = (AppointmentStatus.FULFILLED, AppointmentStatus.ARRIVED)


@dataclass(frozen=True)
class Figures:
    """The figures of some days (a whole period, or one week of it)."""

    first_day: date
    last_day: date
    bookings: int = 0
    cancelled_by_patient: int = 0
    cancelled_by_clinic: int = 0
    # Visits that have started: the patient came (arrived or seen) or did not (no-show).
    attended: int = 0
    noshows: int = 0
    published_slots: int = 0
    booked_slots: int = 0
    lead_times_days: tuple[float, ...] = field(default=(), repr=False)

    @property
    def cancellations(self) -> int:
        return self.cancelled_by_patient + self.cancelled_by_clinic

    @property
    def started_visits(self) -> int:
        return self.attended + self.noshows

    @property
    def noshow_rate(self) -> float | None:
        """No-shows over visits that have started (attended or not); None with none."""
        return self.noshows / self.started_visits if self.started_visits else None

    @property
    def fill_rate(self) -> float | None:
        """Booked slots over published slots; None with none published."""
        return self.booked_slots / self.published_slots if self.published_slots else None

    @property
    def noshow_percent(self) -> float | None:
        return None if self.noshow_rate is None else self.noshow_rate * 100

    @property
    def fill_percent(self) -> float | None:
        return None if self.fill_rate is None else self.fill_rate * 100

    @property
    def lead_time_median(self) -> float | None:
        return statistics.median(self.lead_times_days) if self.lead_times_days else None

    @property
    def lead_time_p90(self) -> float | None:
        return percentile(self.lead_times_days, 0.9)


@dataclass(frozen=True)
class ClinicStats:
    total: Figures
    weeks: list[Figures]
    practitioner: Practitioner | None


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont,
    Excel's PERCENTILE.INC); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def default_period() -> tuple[date, date]:
    """The last 30 days, today included."""
    today = clock.local_today()
    return today - timedelta(days=DEFAULT_DAYS - 1), today


def check_period(first_day: date, last_day: date) -> None:
    """Refuse a period that ends before it starts, is longer than 366 days, or reaches
    more than five years back or one year ahead."""
    today = clock.local_today()
    for name, day in (("from", first_day), ("to", last_day)):
        if day < today - REACH_BACK or day > today + REACH_AHEAD:
            raise ValidationError(
                gettext_lazy("Choose a date from five years ago to one year from today."),
                field=name,
                code="date_range",
            )
    if last_day < first_day:
        raise ValidationError(
            gettext_lazy("The last day must not be before the first day."),
            field="to",
            code="period_order",
        )
    if (last_day - first_day).days + 1 > PERIOD_DAYS_MAX:
        raise ValidationError(
            gettext_lazy("Choose a period of at most 366 days."), field="to", code="period_length"
        )


def _practitioner(ctx: StaffContext, practitioner_id: int | None) -> Practitioner | None:
    if practitioner_id is None:
        return None
    found = ctx.clinic.practitioners.filter(pk=practitioner_id).first()
    if found is None:
        raise NotFound(gettext_lazy("This practitioner is not at this clinic."))
    return found


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week_of(moment: datetime) -> date:
    """The Monday of an instant's local week (TruncWeek's answer, as a date)."""
    return _monday(clock.local_date(moment))


def _appointment_counts(appointments: QuerySet[Appointment], now: datetime) -> dict[date, Any]:
    started = Q(slot__start__lte=now)
    rows = (
        appointments.annotate(week=TruncWeek("slot__start", tzinfo=clock.LOCAL_TZ))
        .values("week")
        .annotate(
            bookings=Count("pk"),
            cancelled_by_patient=Count(
                "pk",
                filter=Q(status=AppointmentStatus.CANCELLED, cancelled_by=CancelledBy.PATIENT),
            ),
            cancelled_by_clinic=Count(
                "pk",
                filter=Q(status=AppointmentStatus.CANCELLED, cancelled_by=CancelledBy.CLINIC),
            ),
            attended=Count("pk", filter=started & Q(status__in=ATTENDED)),
            noshows=Count("pk", filter=started & Q(status=AppointmentStatus.NOSHOW)),
        )
        .order_by()
    )
    return {clock.local_date(row["week"]): _without_week(row) for row in rows}


def _without_week(row: Any) -> dict[str, int]:
    return {name: value for name, value in row.items() if name != "week"}


def _slot_counts(slots: QuerySet[Slot]) -> dict[date, Any]:
    rows = (
        slots.exclude(status=SlotStatus.WITHDRAWN)
        .annotate(week=TruncWeek("start", tzinfo=clock.LOCAL_TZ))
        .values("week")
        .annotate(
            published_slots=Count("pk"),
            booked_slots=Count("pk", filter=Q(status=SlotStatus.BOOKED)),
        )
        .order_by()
    )
    return {clock.local_date(row["week"]): _without_week(row) for row in rows}


def _lead_times(appointments: QuerySet[Appointment]) -> dict[date, list[float]]:
    """Days from booking to visit of every booking, by the visit's week (one query)."""
    by_week: dict[date, list[float]] = defaultdict(list)
    for start, created_at in appointments.values_list("slot__start", "created_at").iterator():
        by_week[_week_of(start)].append((start - created_at).total_seconds() / SECONDS_PER_DAY)
    return by_week


def clinic_stats(
    ctx: StaffContext,
    *,
    first_day: date,
    last_day: date,
    practitioner_id: int | None = None,
) -> ClinicStats:
    """The clinic's figures for the local days first_day..last_day (one practitioner's,
    if given: NotFound for one of another clinic), in all and per week."""
    check_period(first_day, last_day)
    practitioner = _practitioner(ctx, practitioner_id)
    start, end = clock.local_day_bounds(first_day, last_day)
    appointments = Appointment.objects.filter(
        slot__clinic=ctx.clinic, slot__start__gte=start, slot__start__lt=end
    )
    slots = Slot.objects.filter(clinic=ctx.clinic, start__gte=start, start__lt=end)
    if practitioner is not None:
        appointments = appointments.filter(slot__practitioner=practitioner)
        slots = slots.filter(practitioner=practitioner)
    counts = _appointment_counts(appointments, clock.now())
    slot_counts = _slot_counts(slots)
    lead_times = _lead_times(appointments)

    weeks = []
    monday = _monday(first_day)
    while monday <= last_day:
        weeks.append(
            Figures(
                first_day=max(monday, first_day),
                last_day=min(monday + timedelta(days=6), last_day),
                **counts.get(monday, {}),
                **slot_counts.get(monday, {}),
                lead_times_days=tuple(lead_times.get(monday, ())),
            )
        )
        monday += timedelta(days=7)
    return ClinicStats(
        total=_sum(first_day, last_day, weeks), weeks=weeks, practitioner=practitioner
    )


def _sum(first_day: date, last_day: date, weeks: list[Figures]) -> Figures:
    return Figures(
        first_day=first_day,
        last_day=last_day,
        bookings=sum(w.bookings for w in weeks),
        cancelled_by_patient=sum(w.cancelled_by_patient for w in weeks),
        cancelled_by_clinic=sum(w.cancelled_by_clinic for w in weeks),
        attended=sum(w.attended for w in weeks),
        noshows=sum(w.noshows for w in weeks),
        published_slots=sum(w.published_slots for w in weeks),
        booked_slots=sum(w.booked_slots for w in weeks),
        lead_times_days=tuple(t for w in weeks for t in w.lead_times_days),
    )


# --- CSV ---------------------------------------------------------------------------------


def _decimal(value: float | None) -> str:
    """One decimal, with a dot (whatever the language); empty when undefined."""
    return "" if value is None else f"{value:.1f}"


def stats_csv(stats: ClinicStats) -> str:
    """The figures as CSV (RFC 4180, UTF-8 with a byte-order mark for Excel): the whole
    period on the first row, then one row per week, with the same columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            _("rows"),
            _("first day"),
            _("last day"),
            _("practitioner"),
            _("bookings"),
            _("cancelled by the patient"),
            _("cancelled by the clinic"),
            _("visits started"),
            _("attended"),
            _("no-shows"),
            _("no-show rate (%)"),
            _("published slots"),
            _("booked slots"),
            _("fill rate (%)"),
            _("lead time, median (days)"),
            _("lead time, 90th percentile (days)"),
        ]
    )
    who = spreadsheet_text(
        stats.practitioner.display_name if stats.practitioner else str(_("All practitioners"))
    )
    for label, figures in [(_("period"), stats.total), *((_("week"), w) for w in stats.weeks)]:
        writer.writerow(
            [
                label,
                figures.first_day.isoformat(),
                figures.last_day.isoformat(),
                who,
                figures.bookings,
                figures.cancelled_by_patient,
                figures.cancelled_by_clinic,
                figures.started_visits,
                figures.attended,
                figures.noshows,
                _decimal(figures.noshow_percent),
                figures.published_slots,
                figures.booked_slots,
                _decimal(figures.fill_percent),
                _decimal(figures.lead_time_median),
                _decimal(figures.lead_time_p90),
            ]
        )
    return "\ufeff" + out.getvalue()
