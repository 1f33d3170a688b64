"""The "add to my calendar" file: the appointment at its Quebec wall-clock time, with the
VTIMEZONE that defines America/Toronto, on both sides of a daylight-saving change; a
cancellation replaces the event it was imported as."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from icalendar import Calendar, Event

from rdv.core import clock
from rdv.scheduling import services
from rdv.scheduling.ics import appointment_calendar
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot

HOST = "rdv.example.test:8000"


def parsed(appointment: Appointment, *, cancelled: bool = False) -> tuple[Calendar, Event]:
    calendar = Calendar.from_ical(appointment_calendar(appointment, host=HOST, cancelled=cancelled))
    [event] = calendar.events
    return calendar, event


def booked_at(cast: Cast, start: datetime) -> Appointment:
    with clock.frozen_now(local(2026, 10, 20, 8, 0), all_threads=True):
        return services.book_appointment(user=cast.marie, slot_id=make_slot(cast.dr_roy, start).pk)


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(local(2026, 10, 30, 9, 0), id="before-fall-change-EDT"),
        pytest.param(local(2026, 11, 2, 9, 0), id="after-fall-change-EST"),
        pytest.param(local(2027, 3, 12, 9, 0), id="before-spring-change-EST"),
        pytest.param(local(2027, 3, 15, 9, 0), id="after-spring-change-EDT"),
    ],
)
def test_the_event_is_at_the_slots_quebec_time_on_both_sides_of_a_dst_change(
    cast: Cast, start: datetime
) -> None:
    calendar, event = parsed(booked_at(cast, start))
    assert event["DTSTART"].params["TZID"] == "America/Toronto"
    assert event["DTEND"].params["TZID"] == "America/Toronto"
    assert isinstance(event.start, datetime)
    assert event.start == start
    # The wall clock a person reads in their calendar: 09:00, not 13:00 or 14:00 (UTC),
    # and not 08:00 or 10:00 (the offset of the other side of the change).
    assert event.start.strftime("%Y-%m-%d %H:%M") == start.strftime("%Y-%m-%d 09:00")
    assert event.end - event.start == timedelta(minutes=30)

    # A reader that does not know the IANA name relies on the VTIMEZONE shipped in the file.
    [timezone] = calendar.timezones
    assert timezone.tz_name == "America/Toronto"
    from_file = timezone.to_tz(lookup_tzid=False)
    assert event.start.replace(tzinfo=from_file) == start
    assert event.start.replace(tzinfo=from_file).utcoffset() == start.utcoffset()


def test_the_time_zone_covers_only_the_year_around_the_appointment(cast: Cast) -> None:
    start = local(2026, 11, 30, 9, 0)
    calendar, _ = parsed(booked_at(cast, start))
    [timezone] = calendar.timezones
    transitions, _ = timezone.get_transitions()
    assert transitions
    assert all(
        abs(moment - start.replace(tzinfo=None)) < timedelta(days=367) for moment in transitions
    )


def test_the_event_names_the_practitioner_and_the_clinic(cast: Cast) -> None:
    appointment = booked_at(cast, local(2026, 11, 30, 9, 0))
    calendar, event = parsed(appointment)
    assert (calendar["METHOD"], calendar["VERSION"], calendar["CALSCALE"]) == (
        "PUBLISH",
        "2.0",
        "GREGORIAN",
    )
    assert calendar["PRODID"] == "-//RDV Santé//Appointments//FR"
    assert event["STATUS"] == "CONFIRMED"
    assert event["UID"] == f"appointment-{appointment.pk}@rdv.example.test"
    assert clock.now() == event.DTSTAMP
    assert str(event["SUMMARY"]).endswith(cast.dr_roy.display_name)
    assert str(event["LOCATION"]).startswith("GMF Laval")


def test_a_cancellation_replaces_the_imported_event(cast: Cast) -> None:
    appointment = booked_at(cast, local(2026, 11, 30, 9, 0))
    _, published = parsed(appointment)
    with clock.frozen_now(clock.now() + timedelta(hours=1), all_threads=True):
        cancelled = services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    calendar, withdrawn = parsed(cancelled, cancelled=True)
    assert calendar["METHOD"] == "CANCEL"
    assert withdrawn["STATUS"] == "CANCELLED"
    assert withdrawn["UID"] == published["UID"]
    assert withdrawn.sequence > published.sequence
    assert withdrawn.start == published.start
