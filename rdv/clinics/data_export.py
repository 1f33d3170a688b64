"""All of one clinic's data, for the clinic to keep or take elsewhere: a ZIP holding a
Frictionless Data Package (https://specs.frictionlessdata.io/tabular-data-package/):
`datapackage.json` describes every table (columns with type and meaning, primary and
foreign keys), and each table is one UTF-8 CSV file. docs/clinic-data-export.md
documents every file and column.

The clinic's own records are exported in clear (its patients' names, dates of birth,
health insurance numbers, phones, reasons for visits), so the export is an audited read:
one `clinic.data_export` entry for the export, and one `patient.data_export` entry per
patient in it, as the agenda exports write one per appointment. All of it is read in one
transaction, on PostgreSQL at REPEATABLE READ, so the files agree with each other (every
foreign key finds its row) even while the clinic keeps working. Rows are streamed from
the database into the archive, which spills from memory to a temporary file as it grows.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from tempfile import SpooledTemporaryFile
from typing import IO, Any

from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, Q, QuerySet, When
from django.db.models.enums import TextChoices

from rdv.audit import services as audit
from rdv.clinics.models import Clinic, Membership, Practitioner, PractitionerLanguage, StaffRole
from rdv.clinics.queries import StaffContext
from rdv.clinics.services import audit_view
from rdv.core import clock
from rdv.patients.models import Patient
from rdv.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AvailabilityRule,
    CancelledBy,
    Closure,
    Slot,
    SlotStatus,
    Visibility,
)
from rdv.walkin.models import WalkIn, WalkInStatus, Wave

EXPORT_ACTION = "clinic.data_export"
PATIENT_ACTION = "patient.data_export"
FORMAT_VERSION = 1
CHUNK_ROWS = 2000
# Kept in memory up to this size, then in a temporary file (deleted once sent).
SPOOL_BYTES = 16 * 1024 * 1024
DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class Column:
    """One CSV column: its Table Schema field, and where its values come from."""

    name: str
    kind: str  # a Table Schema type: integer, number, string, boolean, date, time, datetime
    description: str
    source: str = ""  # the ORM lookup read (default: the name)
    enum: type[TextChoices] | None = None
    required: bool = False

    @property
    def lookup(self) -> str:
        return self.source or self.name

    def schema(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "name": self.name,
            "type": self.kind,
            "description": self.description,
        }
        constraints: dict[str, Any] = {}
        if self.required:
            constraints["required"] = True
        if self.enum is not None:
            constraints["enum"] = list(self.enum.values)
        if constraints:
            described["constraints"] = constraints
        if self.kind == "datetime":
            described["format"] = DATETIME_FORMAT
        return described


@dataclass(frozen=True)
class ForeignKey:
    fields: tuple[str, ...]
    resource: str
    reference: tuple[str, ...] = ("id",)


@dataclass(frozen=True)
class Table:
    """One resource of the package: `<name>.csv`, its rows, read in primary-key order."""

    name: str
    description: str
    columns: tuple[Column, ...]
    rows: Callable[[Clinic], QuerySet[Any]]
    primary_key: tuple[str, ...] = ("id",)
    foreign_keys: tuple[ForeignKey, ...] = field(default=())
    # Each row is a patient: exporting it is an audited read of their file.
    audited: bool = False

    @property
    def path(self) -> str:
        return f"{self.name}.csv"

    def resource(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "profile": "tabular-data-resource",
            "title": self.name.replace("_", " ").capitalize(),
            "description": self.description,
            "format": "csv",
            "mediatype": "text/csv",
            "encoding": "utf-8",
            "dialect": {"delimiter": ",", "lineTerminator": "\r\n", "header": True},
            "schema": {
                "fields": [column.schema() for column in self.columns],
                "primaryKey": list(self.primary_key),
                "foreignKeys": [
                    {
                        "fields": list(key.fields),
                        "reference": {"resource": key.resource, "fields": list(key.reference)},
                    }
                    for key in self.foreign_keys
                ],
                "missingValues": [""],
            },
        }


def _id(description: str) -> Column:
    return Column("id", "integer", description, required=True)


def _ref(name: str, description: str, *, required: bool = True) -> Column:
    return Column(name, "integer", description, required=required)


def _patients(clinic: Clinic) -> QuerySet[Patient]:
    """Patients seen or booked at this clinic, those registered with one of its
    practitioners, and the files it created for callers without an account (booked or
    not: they exist nowhere else); a family doctor elsewhere is left out (not this
    clinic's record)."""
    booked_here = Appointment.objects.filter(slot__clinic=clinic).values("patient_id")
    return (
        Patient.objects.filter(
            Q(pk__in=booked_here) | Q(family_doctor__clinic=clinic) | Q(record_clinic=clinic)
        )
        .annotate(
            clinic_family_doctor=Case(
                When(family_doctor__clinic=clinic, then=F("family_doctor_id")),
                default=None,
                output_field=IntegerField(),
            )
        )
        .order_by("pk")
    )


TO_CLINIC = ForeignKey(("clinic_id",), "clinic")
TO_PRACTITIONER = ForeignKey(("practitioner_id",), "practitioners")
IN_UTC = "in UTC"

TABLES: tuple[Table, ...] = (
    Table(
        name="clinic",
        description="The clinic itself and its settings (one row).",
        rows=lambda clinic: Clinic.objects.filter(pk=clinic.pk),
        columns=(
            _id("The clinic's identifier in RDV Santé."),
            Column("name", "string", "The clinic's name.", required=True),
            Column("kind", "string", "Kind of clinic.", enum=Clinic.Kind, required=True),
            Column(
                "municipality_geonameid",
                "integer",
                "The municipality's GeoNames identifier (https://www.geonames.org/).",
            ),
            Column("municipality_name", "string", "The municipality's name."),
            Column("address", "string", "Street address."),
            Column("postal_code", "string", "Postal code."),
            Column("phone", "string", "The clinic's phone number."),
            Column("latitude", "number", "Latitude, in decimal degrees (WGS 84)."),
            Column("longitude", "number", "Longitude, in decimal degrees (WGS 84)."),
            Column(
                "cancellation_cutoff_hours",
                "integer",
                "Patients cannot cancel or move online closer than this many hours before "
                "the visit.",
            ),
            Column("first_reminder_days", "integer", "Days before a visit of the first reminder."),
            Column(
                "second_reminder_days", "integer", "Days before a visit of the second reminder."
            ),
            Column("sender_name", "string", "Name shown as the sender of the clinic's messages."),
            Column("reply_to_email", "string", "Where patients' replies to messages go."),
            Column("is_active", "boolean", "Whether the clinic is listed on RDV Santé."),
        ),
    ),
    Table(
        name="practitioners",
        description="The clinic's practitioners, active or not.",
        rows=lambda clinic: Practitioner.objects.filter(clinic=clinic).order_by("pk"),
        foreign_keys=(TO_CLINIC,),
        columns=(
            _id("The practitioner's identifier."),
            _ref("clinic_id", "The clinic (clinic.csv)."),
            Column("first_name", "string", "First name."),
            Column("last_name", "string", "Last name."),
            Column("profession", "string", "Profession.", enum=Practitioner.Profession),
            Column(
                "accepting_new_patients",
                "boolean",
                "Whether the practitioner registers new patients.",
            ),
            Column("is_active", "boolean", "Whether the practitioner still sees patients."),
        ),
    ),
    Table(
        name="practitioner_languages",
        description="The languages each practitioner consults in.",
        rows=lambda clinic: PractitionerLanguage.objects.filter(
            practitioner__clinic=clinic
        ).order_by("practitioner_id", "code"),
        primary_key=("practitioner_id", "code"),
        foreign_keys=(TO_PRACTITIONER,),
        columns=(
            _ref("practitioner_id", "The practitioner (practitioners.csv)."),
            Column("code", "string", "ISO 639-1 language code, e.g. fr, en.", required=True),
        ),
    ),
    Table(
        name="availability_rules",
        description="Weekly times from which slots are published.",
        rows=lambda clinic: AvailabilityRule.objects.filter(practitioner__clinic=clinic).order_by(
            "pk"
        ),
        foreign_keys=(TO_PRACTITIONER,),
        columns=(
            _id("The rule's identifier."),
            _ref("practitioner_id", "The practitioner (practitioners.csv)."),
            Column("weekday", "integer", "Day of the week: 0 = Monday … 6 = Sunday."),
            Column("start_time", "time", "Start, local wall-clock time (America/Toronto)."),
            Column("end_time", "time", "End, local wall-clock time (America/Toronto)."),
            Column("slot_minutes", "integer", "Length of each slot, in minutes."),
            Column("appointment_type", "string", "Type of the slots.", enum=AppointmentType),
            Column("visibility", "string", "Who may book the slots.", enum=Visibility),
            Column(
                "release_hours",
                "integer",
                "Reserved slots still free this many hours before they start open to the "
                "public; empty: they stay reserved.",
            ),
            Column("valid_from", "date", "First day the rule applies."),
            Column("valid_until", "date", "Last day the rule applies; empty: no end."),
        ),
    ),
    Table(
        name="closures",
        description="Periods with no slots, for the whole clinic or one practitioner.",
        rows=lambda clinic: Closure.objects.filter(clinic=clinic).order_by("pk"),
        foreign_keys=(TO_CLINIC, TO_PRACTITIONER),
        columns=(
            _id("The closure's identifier."),
            _ref("clinic_id", "The clinic (clinic.csv)."),
            _ref(
                "practitioner_id",
                "The practitioner away (practitioners.csv); empty: the whole clinic.",
                required=False,
            ),
            Column("starts_at", "datetime", f"Start of the closure, {IN_UTC}."),
            Column("ends_at", "datetime", f"End of the closure (exclusive), {IN_UTC}."),
            Column("reason", "string", "The reason noted by the clinic."),
        ),
    ),
    Table(
        name="slots",
        description="Published appointment times, free, booked or withdrawn.",
        rows=lambda clinic: Slot.objects.filter(clinic=clinic).order_by("pk"),
        foreign_keys=(
            TO_CLINIC,
            TO_PRACTITIONER,
            ForeignKey(("rule_id",), "availability_rules"),
        ),
        columns=(
            _id("The slot's identifier."),
            _ref("clinic_id", "The clinic (clinic.csv)."),
            _ref("practitioner_id", "The practitioner (practitioners.csv)."),
            _ref(
                "rule_id",
                "The weekly rule it came from (availability_rules.csv); empty if none.",
                required=False,
            ),
            Column("start", "datetime", f"Start, {IN_UTC}."),
            Column("end", "datetime", f"End, {IN_UTC}."),
            Column("appointment_type", "string", "Type of appointment.", enum=AppointmentType),
            Column("visibility", "string", "Who may book it.", enum=Visibility),
            Column(
                "public_from",
                "datetime",
                f"A reserved slot still free opens to the public at this instant, {IN_UTC}.",
            ),
            Column("status", "string", "free, booked or withdrawn.", enum=SlotStatus),
        ),
    ),
    Table(
        name="appointments",
        description="Every appointment at the clinic, cancelled ones included.",
        rows=lambda clinic: Appointment.objects.filter(slot__clinic=clinic).order_by("pk"),
        foreign_keys=(
            ForeignKey(("slot_id",), "slots"),
            ForeignKey(("patient_id",), "patients"),
        ),
        columns=(
            _id("The appointment's identifier."),
            _ref("slot_id", "The slot: time and practitioner (slots.csv)."),
            _ref("patient_id", "The patient (patients.csv)."),
            Column("status", "string", "FHIR Appointment.status.", enum=AppointmentStatus),
            Column("reason", "string", "The reason for the visit, as the patient wrote it."),
            Column("created_at", "datetime", f"When it was booked, {IN_UTC}."),
            Column("updated_at", "datetime", f"When it last changed, {IN_UTC}."),
            Column(
                "confirmed_at",
                "datetime",
                f"When the patient confirmed they will come, {IN_UTC}.",
            ),
            Column("cancelled_at", "datetime", f"When it was cancelled, {IN_UTC}."),
            Column(
                "cancelled_by",
                "string",
                "Who cancelled: patient or clinic; empty if not cancelled.",
                enum=CancelledBy,
            ),
            Column(
                "cancellation_reason",
                "string",
                "The reason given with the cancellation, if any.",
            ),
        ),
    ),
    Table(
        name="patients",
        description="Patients with an appointment at the clinic, patients registered "
        "with one of its practitioners, and the files the clinic created for callers "
        "without an account.",
        rows=_patients,
        audited=True,
        foreign_keys=(ForeignKey(("family_doctor_id",), "practitioners"),),
        columns=(
            _id("The patient's identifier."),
            Column("first_name", "string", "First name."),
            Column("last_name", "string", "Last name."),
            Column(
                "last_name_at_birth",
                "string",
                "Last name at birth, when it differs from the last name.",
            ),
            Column("date_of_birth", "date", "Date of birth."),
            Column(
                "ramq_number",
                "string",
                "Quebec health insurance (RAMQ) number, 12 characters.",
            ),
            Column(
                "card_sequence_number",
                "string",
                "The health insurance card's 2-digit sequence number.",
            ),
            Column("phone", "string", "Phone number, E.164 (e.g. +15145550123)."),
            Column(
                "family_doctor_id",
                "integer",
                "The family doctor, when one of this clinic's practitioners "
                "(practitioners.csv); empty otherwise.",
                source="clinic_family_doctor",
            ),
        ),
    ),
    Table(
        name="walk_in_waves",
        description="Walk-in windows and how many places each gave out.",
        rows=lambda clinic: Wave.objects.filter(clinic=clinic).order_by("pk"),
        foreign_keys=(TO_CLINIC, TO_PRACTITIONER),
        columns=(
            _id("The wave's identifier."),
            _ref("clinic_id", "The clinic (clinic.csv)."),
            _ref(
                "practitioner_id",
                "The practitioner (practitioners.csv); empty: whoever is free.",
                required=False,
            ),
            Column("start", "datetime", f"Start of the window, {IN_UTC}."),
            Column("end", "datetime", f"End of the window, {IN_UTC}."),
            Column("capacity", "integer", "Places offered."),
            Column("taken", "integer", "Places given out."),
            Column("created_at", "datetime", f"When the wave was opened, {IN_UTC}."),
        ),
    ),
    Table(
        name="walk_ins",
        description="People who came without an appointment, by wave and place.",
        rows=lambda clinic: WalkIn.objects.filter(wave__clinic=clinic).order_by("pk"),
        foreign_keys=(ForeignKey(("wave_id",), "walk_in_waves"),),
        columns=(
            _id("The walk-in's identifier."),
            _ref("wave_id", "The wave (walk_in_waves.csv)."),
            Column("place", "integer", "Place number in the wave, from 1."),
            Column("first_name", "string", "First name."),
            Column("last_name", "string", "Last name."),
            Column("phone", "string", "Phone number, E.164; empty if not given."),
            Column("status", "string", "Where they are in the queue.", enum=WalkInStatus),
            Column("arrived_at", "datetime", f"Arrival, {IN_UTC}."),
            Column("called_at", "datetime", f"When they were called, {IN_UTC}."),
            Column("done_at", "datetime", f"When they were seen or left, {IN_UTC}."),
        ),
    ),
    Table(
        name="staff",
        description="The clinic's staff accounts and their roles.",
        rows=lambda clinic: Membership.objects.filter(clinic=clinic).order_by("pk"),
        foreign_keys=(TO_CLINIC, TO_PRACTITIONER),
        columns=(
            _id("The membership's identifier."),
            _ref("clinic_id", "The clinic (clinic.csv)."),
            Column("email", "string", "The staff member's sign-in email.", source="user__email"),
            Column("first_name", "string", "First name.", source="user__first_name"),
            Column("last_name", "string", "Last name.", source="user__last_name"),
            Column("role", "string", "Role at the clinic.", enum=StaffRole),
            _ref(
                "practitioner_id",
                "The practitioner this member is (practitioners.csv), for a practitioner.",
                required=False,
            ),
        ),
    ),
)


def _text(value: Any) -> str:
    """A value as Table Schema reads it back: empty for null, ISO 8601 (UTC, to the
    second) for instants, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(DATETIME_FORMAT)
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


# A free-text cell a spreadsheet would run as a formula (OWASP "CSV injection"): patients
# type their own names and reasons. "+1 514…" phones and "-3" stay as they are.
_FORMULA = re.compile(r"^[=@\t\r]|^[+-](?![0-9 ().-]*$)")


def _safe(column: Column, value: str) -> str:
    if column.kind == "string" and column.enum is None and _FORMULA.match(value):
        return f"'{value}"
    return value


def _write_table(archive: zipfile.ZipFile, table: Table, clinic: Clinic) -> list[int]:
    """Stream the table into the archive; the ids written, for an audited table."""
    written: list[int] = []
    rows = table.rows(clinic).values_list(*(c.lookup for c in table.columns))
    with (
        archive.open(table.path, "w", force_zip64=True) as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
    ):
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow([c.name for c in table.columns])
        for row in rows.iterator(chunk_size=CHUNK_ROWS):
            writer.writerow(
                [_safe(c, _text(value)) for c, value in zip(table.columns, row, strict=True)]
            )
            if table.audited:
                written.append(row[0])
    return written


def datapackage(clinic: Clinic) -> dict[str, Any]:
    return {
        "profile": "tabular-data-package",
        "name": f"rdv-sante-clinic-{clinic.pk}",
        "title": f"{clinic.name} — RDV Santé",
        "description": "All of this clinic's data in RDV Santé: its practitioners and "
        "their times, slots, appointments, patients, walk-ins and staff. Contains personal "
        "health information, in clear: keep it as you keep your patient files. "
        "Documented in docs/clinic-data-export.md.",
        "created": clock.now().astimezone(UTC).strftime(DATETIME_FORMAT),
        "rdv_sante_format_version": FORMAT_VERSION,
        "resources": [table.resource() for table in TABLES],
    }


@contextmanager
def _snapshot() -> Iterator[None]:
    """One transaction that reads one state of the database throughout. PostgreSQL needs
    REPEATABLE READ for that (its default, READ COMMITTED, takes a new snapshot per
    statement); it can be set only as a transaction's first statement, so inside an
    outer transaction the export simply shares it. SQLite's transactions (IMMEDIATE here)
    already exclude other writers until the end."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


def export_clinic(ctx: StaffContext) -> IO[bytes]:
    """The clinic's data package as a ZIP, in a file positioned at its start (the caller
    closes it). Audited: one entry for the export, one per patient in it, written in the
    transaction that reads them."""
    clinic = ctx.clinic
    spool = SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (returned open)
    try:
        with _snapshot(), zipfile.ZipFile(spool, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(
                "datapackage.json",
                json.dumps(datapackage(clinic), ensure_ascii=False, indent=2) + "\n",
            )
            for table in TABLES:
                for patient_id in _write_table(archive, table, clinic):
                    audit_view(ctx, PATIENT_ACTION, patient_id, "patient", patient_id)
            audit.record(
                EXPORT_ACTION,
                actor=ctx.user,
                role=ctx.role,
                subject=audit.Subject(
                    object_type="clinic", object_id=str(clinic.pk), clinic_id=clinic.pk
                ),
            )
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


def archive_name(ctx: StaffContext) -> str:
    return f"clinique-{ctx.clinic.pk}-donnees-{clock.local_today().isoformat()}.zip"
