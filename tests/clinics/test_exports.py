"""Continuity exports (issue 6, part 5): the day sheet (PDF) and the next seven days'
agenda (CSV, iCalendar) a clinic works from when the platform is unreachable.

The story: at GMF Laval, Marie sees Dr Roy on Tuesday and Léa sees the nurse on Wednesday;
a patient whose name is a spreadsheet formula is booked on Thursday; Paul's Friday visit is
cancelled and his visit eight days out is beyond the week; the Montréal clinic has its own
patient the same Tuesday. Sophie (receptionist, Laval) exports; Karim (Montréal) may not.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation
from icalendar import Calendar

from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.clinics import exports
from rdv.clinics.queries import StaffContext, staff_context
from rdv.core.errors import ValidationError
from rdv.patients.models import Patient
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Slot
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import PatientFactory

MONDAY = date(2026, 11, 23)  # the frozen today
FORMULA = '=HYPERLINK("http://evil.example/x","Cliquez")'


@dataclass
class Week:
    marie: Appointment
    lea: Appointment
    formula: Appointment
    cancelled: Appointment
    next_week: Appointment
    montreal: Appointment
    free: Slot


def book(user: object, slot: Slot, patient: Patient | None = None) -> Appointment:
    return services.book_appointment(
        user=user,  # type: ignore[arg-type]
        slot_id=slot.pk,
        patient_id=patient.pk if patient is not None else None,
    )


@pytest.fixture
def week(cast: Cast) -> Week:
    cast.marie_self.phone = "+15145550123"
    cast.marie_self.save()
    formula_patient = PatientFactory.create(
        account=cast.paul,
        relationship=Patient.Relationship.OTHER,
        last_name=FORMULA,
        first_name="+Sam",
        phone="+14505550199",
    )
    montreal_patient = PatientFactory.create(last_name="Tremblay", first_name="Montréal")
    marie = book(cast.marie, make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0)))
    lea = book(cast.marie, make_slot(cast.nurse_diane, local(2026, 11, 25, 10, 0)), cast.lea)
    formula = book(cast.paul, make_slot(cast.dr_roy, local(2026, 11, 26, 14, 0)), formula_patient)
    cancelled = book(cast.paul, make_slot(cast.dr_roy, local(2026, 11, 27, 9, 0)))
    services.cancel_appointment(user=cast.paul, appointment_id=cancelled.pk)
    next_week = book(cast.paul, make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0)))
    montreal = book(
        montreal_patient.account,
        make_slot(cast.montreal_doctor, local(2026, 11, 24, 9, 0)),
        montreal_patient,
    )
    free = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 30))
    return Week(marie, lea, formula, cancelled, next_week, montreal, free)


def sophie(cast: Cast) -> StaffContext:
    return staff_context(cast.sophie, cast.laval.pk)


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_csv_lists_this_clinics_week_without_cancelled_visits(cast: Cast, week: Week) -> None:
    with translation.override("en"):
        text = exports.agenda_csv(sophie(cast), MONDAY)
    assert text.startswith("\ufeff")  # Excel reads it as UTF-8
    header, *rows = csv_rows(text)
    assert len(header) == 11
    assert all(len(row) == 11 for row in rows)
    assert [(row[0], row[1], row[2], row[4], row[5]) for row in rows] == [
        ("2026-11-24", "09:00", "09:30", cast.marie_self.last_name, "Marie"),
        ("2026-11-25", "10:00", "10:30", cast.lea.last_name, "Léa"),
        ("2026-11-26", "14:00", "14:30", "'" + FORMULA, "'+Sam"),
    ]
    marie = rows[0]
    assert marie[3] == cast.dr_roy.display_name
    assert marie[6] == cast.marie_self.date_of_birth.isoformat()
    assert marie[7] == "(514) 555-0123"  # as written, and never read as a formula
    assert marie[9] == "Booked"
    assert marie[10] == ""  # not confirmed yet
    everything = "".join(text)
    assert "Tremblay" not in everything  # the Montréal clinic's patient


def test_a_formula_in_a_patients_name_stays_text(cast: Cast, week: Week) -> None:
    cells = [cell for row in csv_rows(exports.agenda_csv(sophie(cast), MONDAY)) for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))]
    assert "'" + FORMULA in cells


def test_the_week_ends_on_its_seventh_day(cast: Cast, week: Week) -> None:
    _, *rows = csv_rows(exports.agenda_csv(sophie(cast), date(2026, 11, 24)))
    assert [row[0] for row in rows] == ["2026-11-24", "2026-11-25", "2026-11-26", "2026-11-30"]
    _, *rows = csv_rows(exports.agenda_csv(sophie(cast), date(2026, 11, 24), days=1))
    assert [row[0] for row in rows] == ["2026-11-24"]


def test_the_calendar_has_each_visit_at_its_quebec_time(cast: Cast, week: Week) -> None:
    calendar = Calendar.from_ical(exports.agenda_ics(sophie(cast), MONDAY))
    assert calendar["METHOD"] == "PUBLISH"
    [timezone] = calendar.timezones
    assert timezone.tz_name == "America/Toronto"
    expected = {a.pk: a for a in (week.marie, week.lea, week.formula)}
    events = calendar.events
    assert len(events) == len(expected)
    for event in events:
        appointment = expected[int(str(event["UID"]).split("@")[0].removeprefix("appointment-"))]
        assert event["DTSTART"].params["TZID"] == "America/Toronto"
        assert isinstance(event.start, datetime)
        assert event.start == appointment.slot.start
        assert event.start.strftime("%H:%M") == appointment.slot.start.astimezone(
            event.start.tzinfo
        ).strftime("%H:%M")
        assert event.end == appointment.slot.end
        assert appointment.patient.first_name in str(event["SUMMARY"])
    marie = next(e for e in events if "Marie" in str(e["SUMMARY"]))
    assert marie.start.strftime("%Y-%m-%d %H:%M") == "2026-11-24 09:00"


def pdf_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"{name} is missing: install Debian's poppler-utils "
            "(`scripts/apt_install.sh poppler-utils`; make test does).",
            pytrace=False,
        )
    return found


def test_the_day_sheet_renders_with_accents_and_free_times(
    cast: Cast, week: Week, tmp_path: Path
) -> None:
    with translation.override("en"):
        pdf = exports.day_sheet_pdf(sophie(cast), date(2026, 11, 24))
    assert pdf.startswith(b"%PDF")
    path = tmp_path / "sheet.pdf"
    path.write_bytes(pdf)

    subprocess.run(  # noqa: S603 (a fixed tool on a file the test wrote)
        [pdf_tool("pdftoppm"), "-png", "-r", "50", str(path), str(tmp_path / "sheet")],
        check=True,
    )
    [png] = tmp_path.glob("sheet*.png")
    assert png.read_bytes().startswith(b"\x89PNG")
    assert png.stat().st_size > 5_000

    text = subprocess.run(  # noqa: S603
        [pdf_tool("pdftotext"), "-layout", str(path), "-"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert cast.laval.name in text
    assert "Tuesday 24 November 2026" in text
    assert cast.dr_roy.display_name in text
    assert f"{cast.marie_self.last_name}, Marie" in text
    assert "(514) 555-0123" in text
    assert "09:30" in text  # the free slot, to place a phone call on paper
    assert "Free" in text
    assert "Page 1 of 1" in text
    assert "Tremblay" not in text  # the other clinic's
    assert "Léa" not in text  # another day


def pdf_text(pdf: bytes) -> str:
    return subprocess.run(  # noqa: S603 (a fixed tool reading the PDF from stdin)
        [pdf_tool("pdftotext"), "-layout", "-", "-"], input=pdf, check=True, capture_output=True
    ).stdout.decode()


def test_the_day_sheet_lists_the_nurses_day_with_accents(cast: Cast, week: Week) -> None:
    text = pdf_text(exports.day_sheet_pdf(sophie(cast), date(2026, 11, 25)))
    assert "Léa" in text
    assert cast.nurse_diane.display_name in text


def test_a_long_day_runs_over_pages_that_say_so(cast: Cast) -> None:
    start = local(2026, 11, 24, 7, 0)
    for index in range(48):
        make_slot(cast.dr_roy, start + timedelta(minutes=15 * index), minutes=15)
    with translation.override("en"):
        pdf = exports.day_sheet_pdf(sophie(cast), date(2026, 11, 24))
    pages = [page for page in pdf_text(pdf).split("\f") if page.strip()]
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page
        assert "Time" in page  # the table's headings on every page
        assert cast.dr_roy.display_name in page  # and whose table it is
    assert "07:00" in pages[0]
    assert "18:45" in pages[-1]


def test_an_empty_day_still_gives_a_sheet(cast: Cast) -> None:
    assert exports.day_sheet_pdf(sophie(cast), MONDAY).startswith(b"%PDF")


def test_every_appointment_exported_is_audited(cast: Cast, week: Week) -> None:
    exports.agenda_csv(sophie(cast), MONDAY)
    entries = AuditEntry.objects.filter(action="agenda.export")
    assert sorted(entries.values_list("object_id", "patient_id")) == sorted(
        (str(a.pk), a.patient_id) for a in (week.marie, week.lea, week.formula)
    )
    assert set(entries.values_list("actor_id", "actor_role", "clinic_id")) == {
        (cast.sophie.pk, "receptionist", cast.laval.pk)
    }
    exports.day_sheet_pdf(sophie(cast), date(2026, 11, 24))
    exports.agenda_ics(sophie(cast), MONDAY)
    assert AuditEntry.objects.filter(action="agenda.export").count() == 3 + 1 + 3


def test_a_day_years_away_is_refused(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        exports.day_sheet_pdf(sophie(cast), date(9999, 12, 31))
    with pytest.raises(ValidationError):
        exports.agenda_csv(sophie(cast), date(1, 1, 1))


# --- through the pages -------------------------------------------------------------------


def signed_in(user: User) -> Client:
    return portal_client(user)


def urls(cast: Cast) -> dict[str, str]:
    base = f"/clinique/{cast.laval.pk}"
    return {
        "page": f"{base}/exports/",
        "pdf": f"{base}/feuille-du-jour.pdf?date=2026-11-24",
        "csv": f"{base}/export/agenda.csv?from=2026-11-23",
        "ics": f"{base}/export/agenda.ics?from=2026-11-23",
    }


def test_staff_download_each_file_uncached(cast: Cast, week: Week) -> None:
    client = signed_in(cast.sophie)
    page = client.get(urls(cast)["page"])
    assert page.status_code == 200
    for kind, content_type in (
        ("pdf", "application/pdf"),
        ("csv", "text/csv; charset=utf-8"),
        ("ics", "text/calendar; charset=utf-8"),
    ):
        url = urls(cast)[kind]
        assert url.split("?")[0].encode() in page.content
        response = client.get(url)
        assert response.status_code == 200, kind
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"].startswith("attachment; filename=")
        assert response["Content-Disposition"].endswith(f'.{kind}"')
        assert "no-store" in response["Cache-Control"]
    assert "Marie" in client.get(urls(cast)["csv"]).content.decode("utf-8-sig")


def test_without_a_date_the_files_start_today(cast: Cast, week: Week) -> None:
    client = signed_in(cast.marc)
    response = client.get(f"/clinique/{cast.laval.pk}/export/agenda.csv")
    assert response.status_code == 200
    assert "2026-11-23-2026-11-29.csv" in response["Content-Disposition"]
    sheet = client.get(f"/clinique/{cast.laval.pk}/feuille-du-jour.pdf")
    assert "2026-11-23.pdf" in sheet["Content-Disposition"]


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01", "9999-12-31", "0001-01-01"])
def test_a_bad_date_is_a_readable_422(cast: Cast, value: str) -> None:
    client = signed_in(cast.sophie)
    base = f"/clinique/{cast.laval.pk}"
    for url, name in (
        (f"{base}/feuille-du-jour.pdf", "date"),
        (f"{base}/export/agenda.csv", "from"),
        (f"{base}/export/agenda.ics", "from"),
    ):
        response = client.get(url, {name: value})
        assert response.status_code == 422, (url, value)
        assert response["Content-Type"].startswith("text/html")
    assert not AuditEntry.objects.filter(action="agenda.export").exists()


def test_staff_of_another_clinic_get_404_and_nothing(cast: Cast, week: Week) -> None:
    client = signed_in(cast.karim)
    for url in urls(cast).values():
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"Marie" not in response.content
    assert not AuditEntry.objects.filter(action="agenda.export").exists()


def test_patients_and_visitors_have_no_exports(cast: Cast, week: Week) -> None:
    for url in urls(cast).values():
        assert signed_in(cast.marie).get(url).status_code == 404, url
        visitor = Client(HTTP_HOST="127.0.0.1").get(url)
        assert visitor.status_code == 302, url  # to the sign-in page
