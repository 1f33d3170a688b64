"""An appointment as an iCalendar file (RFC 5545), for "add to my calendar"."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.translation import gettext as _

from rdv.core import clock
from rdv.scheduling.models import Appointment


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space (RFC 5545 3.1)."""
    out, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > 75:
            out.append(current.decode())
            current = b" "
        current += encoded
    out.append(current.decode())
    return "\r\n".join(out)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def appointment_calendar(appointment: Appointment, *, host: str, cancelled: bool = False) -> str:
    """The appointment as a calendar event; `cancelled` gives the CANCEL that removes it
    from a calendar that imported it (same UID, a higher SEQUENCE)."""
    slot = appointment.slot
    clinic = slot.clinic
    summary = _("Medical appointment — %(practitioner)s") % {
        "practitioner": slot.practitioner.display_name
    }
    description = _("Booked with RDV Santé. To cancel or move it, sign in to RDV Santé.")
    location = ", ".join(p for p in (clinic.name, clinic.address, clinic.municipality_name) if p)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//RDV Santé//Appointments//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:CANCEL" if cancelled else "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:appointment-{appointment.pk}@{host.split(':', maxsplit=1)[0]}",
        f"DTSTAMP:{_utc(clock.now())}",
        # Later versions of the event (a move, a cancellation) must carry a higher number.
        f"SEQUENCE:{int(appointment.updated_at.timestamp())}",
        f"DTSTART:{_utc(slot.start)}",
        f"DTEND:{_utc(slot.end)}",
        f"SUMMARY:{_escape(summary)}",
        f"LOCATION:{_escape(location)}",
        f"DESCRIPTION:{_escape(description)}",
        "STATUS:CANCELLED" if cancelled else "STATUS:CONFIRMED",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)
