"""A clinic's statistics (issue 6, item 5), on a hand-built month at GMF Laval where every
figure is known.

Today is Monday 23 November 2026, 08:00. The period runs from Thursday 29 October to
Tuesday 24 November: five local weeks, the first and last partial, across the end of
daylight saving time (Sunday 1 November). Each visit was booked a whole number of days
(of real time) before it:

| week           | visit                         | status                  | booked ahead |
| 29 Oct – 1 Nov | Dr Roy, Sun 1 Nov 23:30       | seen                    | 7            |
| 2 – 8 Nov      | Dr Roy, Mon 2 Nov             | no-show                 | 1            |
|                | Dr Roy, Tue 3 Nov             | cancelled, patient      | 2            |
|                | nurse, Wed 4 Nov              | arrived                 | 3            |
| 9 – 15 Nov     | Dr Roy, Mon 9 Nov             | seen                    | 10           |
|                | nurse, Tue 10 Nov             | cancelled, clinic       | 4            |
|                | Dr Roy, Thu 12 Nov            | seen                    | 5            |
| 16 – 22 Nov    | (one free slot and one withdrawn slot of the nurse)    |              |
| 23 – 24 Nov    | Dr Roy, Mon 23 Nov 07:30      | no-show                 | 6            |
|                | Dr Roy, Mon 23 Nov 09:00      | booked (not started)    | 2            |
|                | nurse, Mon 23 Nov 07:00       | booked (started)        | 8            |
|                | Dr Roy, Tue 24 Nov 10:00      | booked                  | 0.5          |

Outside it: a no-show the day before the period, a booking the day after, and a
no-show at the Montréal clinic inside it.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.utils import translation

from rdv.clinics import stats
from rdv.clinics.models import Practitioner
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core.errors import NotFound, ValidationError
from rdv.patients.models import Patient
from rdv.scheduling.models import Appointment, AppointmentStatus, CancelledBy, SlotStatus
from tests.conftest import Cast, local, make_slot

FIRST = date(2026, 10, 29)
LAST = date(2026, 11, 24)


def visit(  # noqa: PLR0917 (the table above, one call per line)
    practitioner: Practitioner,
    start: datetime,
    status: str,
    days_ahead: float,
    patient: Patient,
    cancelled_by: str = "",
) -> Appointment:
    """An appointment as history left it, booked `days_ahead` days of real time before."""
    cancelled = status == AppointmentStatus.CANCELLED
    slot_status = SlotStatus.FREE if cancelled_by == CancelledBy.PATIENT else SlotStatus.BOOKED
    if cancelled_by == CancelledBy.CLINIC:
        slot_status = SlotStatus.WITHDRAWN
    slot = make_slot(practitioner, start, status=slot_status)
    created = start.astimezone(UTC) - timedelta(days=days_ahead)
    assert patient.account is not None
    return Appointment.objects.create(
        slot=slot,
        patient=patient,
        booked_by=patient.account,
        status=status,
        created_at=created,
        updated_at=created,
        cancelled_at=created + timedelta(hours=1) if cancelled else None,
        cancelled_by=cancelled_by,
    )


@pytest.fixture
def month(cast: Cast) -> None:
    roy, nurse, marie = cast.dr_roy, cast.nurse_diane, cast.marie_self
    s = AppointmentStatus
    visit(roy, local(2026, 11, 1, 23, 30), s.FULFILLED, 7, marie)
    visit(roy, local(2026, 11, 2, 9), s.NOSHOW, 1, marie)
    visit(roy, local(2026, 11, 3, 9), s.CANCELLED, 2, marie, CancelledBy.PATIENT)
    visit(nurse, local(2026, 11, 4, 9), s.ARRIVED, 3, cast.lea)
    visit(roy, local(2026, 11, 9, 9), s.FULFILLED, 10, marie)
    visit(nurse, local(2026, 11, 10, 9), s.CANCELLED, 4, cast.lea, CancelledBy.CLINIC)
    visit(roy, local(2026, 11, 12, 9), s.FULFILLED, 5, cast.paul_self)
    make_slot(nurse, local(2026, 11, 17, 9))
    make_slot(nurse, local(2026, 11, 18, 9), status=SlotStatus.WITHDRAWN)
    visit(roy, local(2026, 11, 23, 7, 30), s.NOSHOW, 6, cast.paul_self)
    visit(roy, local(2026, 11, 23, 9), s.BOOKED, 2, marie)
    visit(nurse, local(2026, 11, 23, 7), s.BOOKED, 8, cast.lea)
    visit(roy, local(2026, 11, 24, 10), s.BOOKED, 0.5, cast.paul_self)
    # Outside the period or the clinic.
    visit(roy, local(2026, 10, 28, 10), s.NOSHOW, 3, marie)
    visit(nurse, local(2026, 11, 25, 9), s.BOOKED, 1, cast.lea)
    visit(cast.montreal_doctor, local(2026, 11, 4, 9), s.NOSHOW, 1, cast.paul_self)


def sophie(cast: Cast) -> StaffContext:
    return staff_context(cast.sophie, cast.laval.pk)


def figures(f: stats.Figures) -> dict[str, Any]:
    return {
        "days": (f.first_day, f.last_day),
        "bookings": f.bookings,
        "cancelled": (f.cancelled_by_patient, f.cancelled_by_clinic),
        "noshows": (f.noshows, f.started_visits),
        "slots": (f.booked_slots, f.published_slots),
        "lead": (f.lead_time_median, f.lead_time_p90),
    }


def test_the_period_figures_are_the_ones_counted_by_hand(
    cast: Cast, month: None, django_assert_max_num_queries: Any
) -> None:
    ctx = sophie(cast)
    with django_assert_max_num_queries(3):  # appointments, slots, lead times
        result = stats.clinic_stats(ctx, first_day=FIRST, last_day=LAST)
    total = result.total
    assert figures(total) == {
        "days": (FIRST, LAST),
        "bookings": 11,
        "cancelled": (1, 1),
        "noshows": (2, 6),
        "slots": (9, 11),
        "lead": (pytest.approx(4.0), pytest.approx(8.0)),
    }
    assert total.cancellations == 2
    assert total.noshow_rate == pytest.approx(2 / 6)
    assert total.fill_rate == pytest.approx(9 / 11)
    assert result.practitioner is None


def test_each_local_week_has_its_own_figures(cast: Cast, month: None) -> None:
    weeks = stats.clinic_stats(sophie(cast), first_day=FIRST, last_day=LAST).weeks
    approx = pytest.approx
    assert [figures(w) for w in weeks] == [
        {
            # Sunday 1 November 23:30 is Monday 04:30 in UTC: still the local week before.
            "days": (date(2026, 10, 29), date(2026, 11, 1)),
            "bookings": 1,
            "cancelled": (0, 0),
            "noshows": (0, 1),
            "slots": (1, 1),
            "lead": (approx(7.0), approx(7.0)),
        },
        {
            "days": (date(2026, 11, 2), date(2026, 11, 8)),
            "bookings": 3,
            "cancelled": (1, 0),
            "noshows": (1, 2),
            "slots": (2, 3),
            "lead": (approx(2.0), approx(2.8)),
        },
        {
            "days": (date(2026, 11, 9), date(2026, 11, 15)),
            "bookings": 3,
            "cancelled": (0, 1),
            "noshows": (0, 2),
            "slots": (2, 2),
            "lead": (approx(5.0), approx(9.0)),
        },
        {
            "days": (date(2026, 11, 16), date(2026, 11, 22)),
            "bookings": 0,
            "cancelled": (0, 0),
            "noshows": (0, 0),
            "slots": (0, 1),
            "lead": (None, None),
        },
        {
            # Only the 07:30 no-show has started (the nurse's 07:00 is still "booked").
            "days": (date(2026, 11, 23), date(2026, 11, 24)),
            "bookings": 4,
            "cancelled": (0, 0),
            "noshows": (1, 1),
            "slots": (4, 4),
            "lead": (approx(4.0), approx(7.4)),
        },
    ]
    assert weeks[3].noshow_rate is None  # nothing started: no rate, not 0 %
    assert weeks[3].fill_rate == 0


def test_one_practitioners_figures(cast: Cast, month: None) -> None:
    result = stats.clinic_stats(
        sophie(cast), first_day=FIRST, last_day=LAST, practitioner_id=cast.nurse_diane.pk
    )
    assert result.practitioner == cast.nurse_diane
    assert figures(result.total) == {
        "days": (FIRST, LAST),
        "bookings": 3,
        "cancelled": (0, 1),
        "noshows": (0, 1),
        "slots": (2, 3),
        "lead": (pytest.approx(4.0), pytest.approx(7.2)),
    }


def test_another_clinics_practitioner_is_not_found(cast: Cast, month: None) -> None:
    with pytest.raises(NotFound):
        stats.clinic_stats(
            sophie(cast),
            first_day=FIRST,
            last_day=LAST,
            practitioner_id=cast.montreal_doctor.pk,
        )


def test_an_empty_period_has_no_rates(cast: Cast) -> None:
    total = stats.clinic_stats(
        sophie(cast), first_day=date(2026, 1, 1), last_day=date(2026, 1, 31)
    ).total
    assert (total.bookings, total.published_slots) == (0, 0)
    assert (total.noshow_rate, total.fill_rate, total.lead_time_median) == (None, None, None)


def test_the_default_period_is_the_last_30_days_today_included(cast: Cast) -> None:
    assert stats.default_period() == (date(2026, 10, 25), date(2026, 11, 23))


@pytest.mark.parametrize(
    ("first", "last", "field", "code"),
    [
        (date(2026, 11, 23), date(2026, 11, 22), "to", "period_order"),
        (date(2025, 11, 1), date(2026, 11, 2), "to", "period_length"),  # 367 days
        (date(2020, 1, 1), date(2020, 1, 31), "from", "date_range"),
        (date(2026, 11, 1), date(2028, 1, 1), "to", "date_range"),
        (date(1, 1, 1), date(1, 1, 2), "from", "date_range"),
        (date(9999, 12, 30), date(9999, 12, 31), "from", "date_range"),
    ],
)
def test_a_bad_period_is_refused(
    cast: Cast, first: date, last: date, field: str, code: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        stats.clinic_stats(sophie(cast), first_day=first, last_day=last)
    assert (refused.value.field, refused.value.code) == (field, code)


def test_a_period_of_366_days_is_accepted(cast: Cast) -> None:
    result = stats.clinic_stats(
        sophie(cast), first_day=date(2025, 11, 23), last_day=date(2026, 11, 23)
    )
    weeks = result.weeks
    assert len(weeks) == 54  # a Sunday, 52 whole weeks, a Monday
    assert (weeks[0].first_day, weeks[0].last_day) == (date(2025, 11, 23), date(2025, 11, 23))
    assert (weeks[-1].first_day, weeks[-1].last_day) == (date(2026, 11, 23), date(2026, 11, 23))


def test_the_percentile_interpolates_between_ranks() -> None:
    assert stats.percentile([], 0.9) is None
    assert stats.percentile([3.0], 0.9) == 3.0
    assert stats.percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9) == (
        pytest.approx(9.1)
    )
    assert stats.percentile([5.0, 1.0], 0.5) == 3.0


def test_the_csv_has_the_period_then_each_week(cast: Cast, month: None) -> None:
    result = stats.clinic_stats(sophie(cast), first_day=FIRST, last_day=LAST)
    with translation.override("en"):
        text = stats.stats_csv(result)
    assert text.startswith("\ufeff")
    header, period, *weeks = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(header) == 16
    assert header[:5] == ["rows", "first day", "last day", "practitioner", "bookings"]
    assert period == [
        "period",
        "2026-10-29",
        "2026-11-24",
        "All practitioners",
        "11",
        "1",
        "1",
        "6",
        "4",
        "2",
        "33.3",
        "11",
        "9",
        "81.8",
        "4.0",
        "8.0",
    ]
    assert [row[0] for row in weeks] == ["week"] * 5
    assert [row[1] for row in weeks] == [
        "2026-10-29",
        "2026-11-02",
        "2026-11-09",
        "2026-11-16",
        "2026-11-23",
    ]
    empty_week = weeks[3]
    assert (empty_week[10], empty_week[13], empty_week[14]) == ("", "0.0", "")


def test_a_formula_in_a_practitioners_name_stays_text_in_the_csv(cast: Cast) -> None:
    cast.nurse_diane.first_name = "=cmd"
    cast.nurse_diane.profession = Practitioner.Profession.NURSE
    cast.nurse_diane.save()
    result = stats.clinic_stats(
        sophie(cast),
        first_day=FIRST,
        last_day=LAST,
        practitioner_id=cast.nurse_diane.pk,
    )
    _, period, *_ = list(csv.reader(io.StringIO(stats.stats_csv(result).removeprefix("\ufeff"))))
    assert period[3].startswith("'=")
