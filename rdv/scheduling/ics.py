"""An appointment as an iCalendar file (RFC 5545), for "add to my calendar"."""

from __future__ import annotations

from datetime import timedelta

from django.utils.translation import gettext as _
from icalendar import STATUS, Calendar, Event, Timezone

from rdv.core import clock
from rdv.scheduling.models import Appointment

PRODID = "-//RDV Santé//Appointments//FR"

# The VTIMEZONE describes only the offsets in force around the appointment: enough for
# any calendar to place it, and a few lines instead of every rule since 1970.
TIMEZONE_MARGIN = timedelta(days=366)


def appointment_calendar(appointment: Appointment, *, host: str, cancelled: bool = False) -> str:
    """The appointment as a calendar event in local (America/Toronto) time, with the
    VTIMEZONE that defines it; `cancelled` gives the CANCEL that removes it from a calendar
    that imported it (same UID, a higher SEQUENCE)."""
    slot = appointment.slot
    clinic = slot.clinic
    start = slot.start.astimezone(clock.LOCAL_TZ)
    event = Event.new(
        uid=f"appointment-{appointment.pk}@{host.split(':', maxsplit=1)[0]}",
        stamp=clock.now(),
        # Later versions of the event (a move, a cancellation) must carry a higher number.
        sequence=int(appointment.updated_at.timestamp()),
        start=start,
        end=slot.end.astimezone(clock.LOCAL_TZ),
        summary=_("Medical appointment — %(practitioner)s")
        % {"practitioner": slot.practitioner.display_name},
        location=", ".join(p for p in (clinic.name, clinic.address, clinic.municipality_name) if p),
        description=_("Booked with RDV Santé. To cancel or move it, sign in to RDV Santé."),
        status=STATUS.CANCELLED if cancelled else STATUS.CONFIRMED,
    )
    timezone = Timezone.from_tzinfo(
        clock.LOCAL_TZ,
        first_date=(start - TIMEZONE_MARGIN).date(),
        last_date=(start + TIMEZONE_MARGIN).date(),
    )
    calendar = Calendar()
    calendar.prodid = PRODID
    calendar.version = "2.0"
    calendar.calscale = "GREGORIAN"
    calendar.method = "CANCEL" if cancelled else "PUBLISH"
    calendar.add_component(timezone)
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical.decode()
