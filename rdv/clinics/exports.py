"""Continuity: the clinic's agenda on paper and in other tools, for when we are down.

A printable day sheet (PDF), and the next days' agenda as CSV (spreadsheets) and iCalendar
(any calendar). Every file is an audited read, like the agenda page: one entry per
appointment shown (action `agenda.export`). Cancelled appointments are left out.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from icalendar import STATUS, Calendar, Event, Timezone

from rdv.clinics.models import Practitioner
from rdv.clinics.queries import StaffContext
from rdv.clinics.services import audit_view
from rdv.core import clock
from rdv.core.errors import ValidationError
from rdv.patients.services import phone_for_display
from rdv.scheduling import queries
from rdv.scheduling.ics import TIMEZONE_MARGIN
from rdv.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus

EXPORT_ACTION = "agenda.export"
EXPORT_DAYS = 7
EXPORT_DAYS_MAX = 31
# How far from today an export may reach: a year of history and a year ahead (slots exist
# only 60 days ahead); also keeps a typed year 1 or 9999 away from date arithmetic.
EXPORT_REACH = timedelta(days=366)
# Debian's fonts-dejavu-core (`make run` and `make test` install it): a Unicode TrueType
# font, so accented names print; the PDF embeds the subset it uses.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"": FONT_DIR / "DejaVuSans.ttf", "B": FONT_DIR / "DejaVuSans-Bold.ttf"}
FONT = "DejaVuSans"
PRODID = "-//RDV Santé//Clinic agenda//FR"
# Characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# fontTools logs each table it subsets at INFO: a dozen lines per PDF otherwise.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)


def check_export_day(day: date) -> None:
    """Refuse a day too far from today to be a day of the clinic's agenda."""
    if abs(day - clock.local_today()) > EXPORT_REACH:
        raise ValidationError(
            gettext_lazy("Choose a date within a year of today."), field="date", code="date_range"
        )


def _exported(ctx: StaffContext, first_day: date, days: int) -> list[Appointment]:
    """The clinic's appointments of `days` local days from `first_day`, cancelled ones
    aside, in time order; one audit entry per appointment, written with the read."""
    check_export_day(first_day)
    if not 1 <= days <= EXPORT_DAYS_MAX:
        raise ValueError(f"an export covers 1 to {EXPORT_DAYS_MAX} days, not {days}")
    start, end = clock.local_day_bounds(first_day, first_day + timedelta(days=days - 1))
    with transaction.atomic():
        appointments = list(
            queries.clinic_appointments(ctx)
            .filter(slot__start__gte=start, slot__start__lt=end)
            .exclude(status=AppointmentStatus.CANCELLED)
        )
        for appointment in appointments:
            audit_view(ctx, EXPORT_ACTION, appointment.patient_id, "appointment", appointment.pk)
    return appointments


def _free_slots(ctx: StaffContext, day: date) -> list[Slot]:
    """The day's free slots of the clinic's active practitioners (no patient data)."""
    start, end = clock.local_day_bounds(day, day)
    return list(
        Slot.objects.filter(
            clinic=ctx.clinic,
            status=SlotStatus.FREE,
            practitioner__is_active=True,
            start__gte=start,
            start__lt=end,
        )
        .select_related("practitioner")
        .order_by("start", "pk")
    )


def _local(moment: datetime) -> datetime:
    return moment.astimezone(clock.LOCAL_TZ)


def _status(appointment: Appointment) -> str:
    label = str(appointment.get_status_display())
    if appointment.confirmed_at and appointment.status == AppointmentStatus.BOOKED:
        return _("%(status)s, confirmed") % {"status": label}
    return label


# --- CSV ---------------------------------------------------------------------------------


def spreadsheet_text(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs as a formula."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def agenda_csv(ctx: StaffContext, first_day: date, days: int = EXPORT_DAYS) -> str:
    """The agenda of `days` local days from `first_day`, one row per appointment, as CSV
    (RFC 4180, comma-separated) starting with a UTF-8 byte-order mark so Excel reads the
    accents right."""
    appointments = _exported(ctx, first_day, days)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [
            _("date"),
            _("start"),
            _("end"),
            _("practitioner"),
            _("patient last name"),
            _("first name"),
            _("date of birth"),
            _("phone"),
            _("type"),
            _("status"),
            _("confirmed"),
        ]
    )
    for appointment in appointments:
        slot, patient = appointment.slot, appointment.patient
        start, end = _local(slot.start), _local(slot.end)
        confirmed = appointment.confirmed_at
        row = [
            start.date().isoformat(),
            start.strftime("%H:%M"),
            end.strftime("%H:%M"),
            slot.practitioner.display_name,
            patient.last_name,
            patient.first_name,
            patient.date_of_birth.isoformat(),
            phone_for_display(patient.phone),
            str(slot.get_appointment_type_display()),
            str(appointment.get_status_display()),
            _local(confirmed).strftime("%Y-%m-%d %H:%M") if confirmed else "",
        ]
        writer.writerow([spreadsheet_text(value) for value in row])
    return "\ufeff" + out.getvalue()


# --- iCalendar ---------------------------------------------------------------------------


def agenda_ics(ctx: StaffContext, first_day: date, days: int = EXPORT_DAYS) -> str:
    """The agenda of `days` local days from `first_day` as one calendar (METHOD:PUBLISH):
    one event per appointment, in America/Toronto time with its VTIMEZONE. UIDs are stable
    (`appointment-<id>@<site host>`), so importing a newer file updates events rather than
    doubling them."""
    appointments = _exported(ctx, first_day, days)
    last_day = first_day + timedelta(days=days - 1)
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    calendar = Calendar.new(
        prodid=PRODID,
        method="PUBLISH",
        calscale="GREGORIAN",
        name=_("%(clinic)s — agenda") % {"clinic": ctx.clinic.name},
    )
    calendar.add_component(
        Timezone.from_tzinfo(
            clock.LOCAL_TZ,
            first_date=first_day - TIMEZONE_MARGIN,
            last_date=last_day + TIMEZONE_MARGIN,
        )
    )
    for appointment in appointments:
        slot, patient = appointment.slot, appointment.patient
        calendar.add_component(
            Event.new(
                uid=f"appointment-{appointment.pk}@{host}",
                stamp=clock.now(),
                sequence=int(appointment.updated_at.timestamp()),
                start=_local(slot.start),
                end=_local(slot.end),
                summary=f"{patient.first_name} {patient.last_name} — "
                f"{slot.get_appointment_type_display()}",
                description=f"{slot.practitioner.display_name}\n{_status(appointment)}",
                location=ctx.clinic.name,
                status=STATUS.CONFIRMED,
            )
        )
    ical: bytes = calendar.to_ical()
    return ical.decode()


# --- PDF day sheet -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One line of a practitioner's table: an appointment, or a free slot to write on."""

    start: datetime
    appointment: Appointment | None
    slot: Slot

    def cells(self) -> list[str]:
        time = _local(self.start).strftime("%H:%M")
        kind = str(self.slot.get_appointment_type_display())
        if self.appointment is None:
            return [time, "", "", "", kind, str(SlotStatus.FREE.label), ""]
        patient = self.appointment.patient
        return [
            time,
            f"{patient.last_name}, {patient.first_name}",
            patient.date_of_birth.isoformat(),
            phone_for_display(patient.phone),
            kind,
            _status(self.appointment),
            "",
        ]


class _Sheet(FPDF):
    """US Letter, landscape (the paper Quebec printers hold), with a running header and a
    footer carrying the page number and the time it was printed."""

    def __init__(self, title: str, subtitle: str, printed: str) -> None:
        super().__init__(orientation="landscape", unit="mm", format="letter")
        self._title, self._subtitle, self._printed = title, subtitle, printed
        # The practitioner whose table is being drawn: named again atop a page it runs onto.
        self.section: str | None = None
        for style, path in FONT_FILES.items():
            self.add_font(FONT, style, str(path))
        self.set_margins(10, 10, 10)
        self.set_auto_page_break(auto=True, margin=16)
        self.set_title(f"{title} — {subtitle}")
        self.set_creator("RDV Santé")

    def header(self) -> None:
        self.set_font(FONT, "B", 14)
        self.cell(0, 7, self._title, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_font(FONT, "", 11)
        self.cell(0, 6, self._subtitle, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)
        if self.section:
            self.set_font(FONT, "B", 12)
            self.cell(0, 8, self.section, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.set_font(FONT, "", 9)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(FONT, "", 8)
        self.cell(0, 5, self._printed)
        self.set_x(self.l_margin)
        page = _("Page %(page)s of %(pages)s") % {
            "page": self.page_no(),
            "pages": self.str_alias_nb_pages,
        }
        self.cell(0, 5, page, align="R")


# mm, 260 in all (the page's width); the type column fits its longest label on one line
COLUMN_WIDTHS = (13, 50, 24, 29, 62, 28, 54)


def _practitioner_table(pdf: _Sheet, practitioner: Practitioner, lines: list[_Line]) -> None:
    pdf.section = None
    if pdf.will_page_break(30):
        pdf.add_page()
    pdf.set_font(FONT, "B", 12)
    pdf.cell(0, 8, practitioner.display_name, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 9)
    pdf.section = practitioner.display_name
    headings = [
        _("Time"),
        _("Patient"),
        _("Date of birth"),
        _("Phone"),
        _("Type"),
        _("Status"),
        _("Notes"),
    ]
    with pdf.table(col_widths=COLUMN_WIDTHS, line_height=6, text_align="LEFT") as table:
        row = table.row()
        for heading in headings:
            row.cell(heading)
        for line in lines:
            row = table.row()
            for value in line.cells():
                row.cell(value)
    pdf.section = None
    pdf.ln(4)


def day_sheet_pdf(ctx: StaffContext, day: date) -> bytes:
    """The day's sheet to work from on paper: per practitioner, every appointment (patient,
    date of birth, phone, type, status) and every free slot in time order, with a blank
    column for notes, so phone calls and walk-ins can be placed by hand."""
    appointments = _exported(ctx, day, 1)
    lines = [_Line(a.slot.start, a, a.slot) for a in appointments]
    lines += [_Line(slot.start, None, slot) for slot in _free_slots(ctx, day)]
    lines.sort(
        key=lambda line: (
            line.slot.practitioner.last_name,
            line.slot.practitioner.first_name,
            line.slot.practitioner_id,
            line.start,
        )
    )
    printed = date_format(_local(clock.now()), "j F Y, H:i")
    pdf = _Sheet(
        ctx.clinic.name,
        _("Day sheet — %(date)s") % {"date": date_format(day, "l j F Y")},
        _("Printed %(when)s") % {"when": printed},
    )
    pdf.add_page()
    for _practitioner_id, group in groupby(lines, key=lambda line: line.slot.practitioner_id):
        practitioner_lines = list(group)
        _practitioner_table(pdf, practitioner_lines[0].slot.practitioner, practitioner_lines)
    if not lines:
        pdf.set_font(FONT, "", 11)
        pdf.cell(0, 8, _("No appointment and no free time this day."))
    return bytes(pdf.output())
