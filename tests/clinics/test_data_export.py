"""All of a clinic's data as a Frictionless Data Package (issue 6, item 6).

The story: Marc, administrator of GMF Laval, downloads everything. Laval has Dr Roy's
weekly times and a closure; Marie (health card, phone) is booked with Dr Roy for a cough,
Léa's visit was cancelled by the clinic, Ana waits in a walk-in wave with her phone.
Zoé is registered with Dr Roy but has never booked; Yves booked at Laval but his family
doctor works in Montréal. The Montréal clinic has Nadia (its own patient, a secret
reason) and a walk-in; none of it may appear in Laval's file.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rdv.audit.models import AuditEntry
from rdv.clinics import data_export
from rdv.clinics.queries import staff_context
from rdv.patients.models import Patient
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Closure
from rdv.walkin import services as walkin
from tests.conftest import Cast, local, make_slot, on_postgres
from tests.factories import PatientFactory, RuleFactory

SECRETS = ("secret-of-montreal", "Nadia", "Montréal-walker", "+14385550177")


@dataclass
class Clinics:
    marie_ramq: str
    marie_visit: Appointment
    lea_visit: Appointment
    zoe: Patient
    yves: Patient
    nadia: Patient
    nadia_visit: Appointment


def card_number(patient: Patient) -> str:
    letters = expected_letters(last_name_at_birth=patient.last_name, first_name=patient.first_name)
    return f"{letters}{patient.date_of_birth:%y%m%d}11"


def a_walk_in(user: Any, clinic_id: int, first_name: str, phone: str) -> None:
    ctx = staff_context(user, clinic_id)
    (wave,) = walkin.open_waves(
        ctx, day=date(2026, 11, 23), first_start=time(9), last_start=time(9), capacity=3
    )
    walkin.add_walk_in(ctx, wave.pk, first_name=first_name, last_name="Walk-in", phone=phone)


@pytest.fixture
def clinics(cast: Cast) -> Clinics:
    marie = cast.marie_self
    marie.phone = "+15145550123"
    marie.save()
    marie_ramq = card_number(marie)
    set_health_card(patient=marie, ramq_number=marie_ramq, card_sequence_number="01")
    marie_visit = services.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, 9)).pk,
        reason="Toux depuis trois semaines",
    )
    lea_visit = services.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.nurse_diane, local(2026, 11, 26, 10)).pk,
        patient_id=cast.lea.pk,
    )
    services.cancel_for_clinic(
        staff_context(cast.marc, cast.laval.pk),
        appointment_id=lea_visit.pk,
        reason="L'infirmière est en formation",
    )
    make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))  # free
    RuleFactory.create(practitioner=cast.dr_roy)
    Closure.objects.create(
        clinic=cast.laval,
        practitioner=cast.nurse_diane,
        starts_at=local(2026, 12, 1),
        ends_at=local(2026, 12, 2),
        reason="Formation",
    )
    a_walk_in(cast.sophie, cast.laval.pk, "Ana", "4505550123")
    zoe = PatientFactory.create(first_name="Zoé", last_name="Gagnon", family_doctor=cast.dr_roy)
    yves = PatientFactory.create(
        first_name="Yves", last_name="Côté", family_doctor=cast.montreal_doctor
    )
    assert yves.account is not None
    services.book_appointment(
        user=yves.account, slot_id=make_slot(cast.nurse_diane, local(2026, 11, 27, 9)).pk
    )
    nadia = PatientFactory.create(
        first_name="Nadia", last_name="Lamarre", family_doctor=cast.montreal_doctor
    )
    assert nadia.account is not None
    nadia_visit = services.book_appointment(
        user=nadia.account,
        slot_id=make_slot(cast.montreal_doctor, local(2026, 11, 25, 9)).pk,
        reason="secret-of-montreal",
    )
    a_walk_in(cast.karim, cast.montreal.pk, "Montréal-walker", "4385550177")
    return Clinics(marie_ramq, marie_visit, lea_visit, zoe, yves, nadia, nadia_visit)


def export(cast: Cast) -> zipfile.ZipFile:
    archive = data_export.export_clinic(staff_context(cast.marc, cast.laval.pk))
    return zipfile.ZipFile(io.BytesIO(archive.read()))


def package(archive: zipfile.ZipFile) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(archive.read("datapackage.json"))
    return loaded


def table(archive: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    text = archive.read(f"{name}.csv").decode("utf-8")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def ids(rows: list[dict[str, str]], column: str = "id") -> set[int]:
    return {int(row[column]) for row in rows if row[column]}


def test_the_package_lists_every_csv_with_a_schema_matching_its_header(
    cast: Cast, clinics: Clinics
) -> None:
    archive = export(cast)
    described = package(archive)
    assert described["profile"] == "tabular-data-package"
    assert described["name"] == f"rdv-sante-clinic-{cast.laval.pk}"
    resources = described["resources"]
    paths = [r["path"] for r in resources]
    assert sorted(archive.namelist()) == sorted(["datapackage.json", *paths])
    assert {r["name"] for r in resources} >= {
        "clinic",
        "practitioners",
        "practitioner_languages",
        "availability_rules",
        "closures",
        "slots",
        "appointments",
        "patients",
        "walk_in_waves",
        "walk_ins",
        "staff",
    }
    names = {r["name"]: r for r in resources}
    for resource in resources:
        assert (resource["format"], resource["encoding"]) == ("csv", "utf-8")
        assert resource["path"] == f"{resource['name']}.csv"
        schema = resource["schema"]
        columns = [f["name"] for f in schema["fields"]]
        header = next(csv.reader(io.StringIO(archive.read(resource["path"]).decode("utf-8"))))
        assert header == columns, resource["name"]
        for described_field in schema["fields"]:
            assert described_field["type"] in {
                "integer",
                "number",
                "string",
                "boolean",
                "date",
                "time",
                "datetime",
            }
            assert described_field["description"]
        assert set(schema["primaryKey"]) <= set(columns)
        for key in schema["foreignKeys"]:
            assert set(key["fields"]) <= set(columns)
            target = names[key["reference"]["resource"]]
            assert set(key["reference"]["fields"]) <= {
                f["name"] for f in target["schema"]["fields"]
            }


def _check_value(value: str, described: dict[str, Any]) -> None:
    """The value reads back as its Table Schema type says (empty is null)."""
    if value == "":
        assert not described.get("constraints", {}).get("required"), described["name"]
        return
    kind = described["type"]
    if kind == "integer":
        int(value)
    elif kind == "number":
        float(value)
    elif kind == "boolean":
        assert value in {"true", "false"}
    elif kind == "date":
        date.fromisoformat(value)
    elif kind == "time":
        time.fromisoformat(value)
    elif kind == "datetime":
        datetime.strptime(value, described["format"]).replace(tzinfo=UTC)
    enum = described.get("constraints", {}).get("enum")
    if enum is not None:
        assert value in enum, (described["name"], value)


def test_every_value_has_its_type_every_key_is_unique_and_every_reference_resolves(
    cast: Cast, clinics: Clinics
) -> None:
    archive = export(cast)
    resources = package(archive)["resources"]
    rows = {r["name"]: table(archive, r["name"]) for r in resources}
    for resource in resources:
        schema, name = resource["schema"], resource["name"]
        for row in rows[name]:
            for described in schema["fields"]:
                _check_value(row[described["name"]], described)
        keys = [tuple(row[c] for c in schema["primaryKey"]) for row in rows[name]]
        assert len(keys) == len(set(keys)), name
        for key in schema["foreignKeys"]:
            target = key["reference"]
            known = {tuple(row[c] for c in target["fields"]) for row in rows[target["resource"]]}
            for row in rows[name]:
                value = tuple(row[c] for c in key["fields"])
                assert all(v == "" for v in value) or value in known, (name, key, value)
    assert all(rows[name] for name in rows), "every table has rows in this story"


def test_nothing_of_another_clinic_is_in_the_export(cast: Cast, clinics: Clinics) -> None:
    archive = export(cast)
    everything = b"".join(archive.read(name) for name in archive.namelist())
    for secret in SECRETS:
        assert secret.encode() not in everything, secret
    assert cast.montreal.name.encode() not in everything
    assert ids(table(archive, "clinic")) == {cast.laval.pk}
    assert ids(table(archive, "practitioners")) == {cast.dr_roy.pk, cast.nurse_diane.pk}
    assert clinics.nadia_visit.pk not in ids(table(archive, "appointments"))
    assert clinics.nadia.pk not in ids(table(archive, "patients"))
    assert {row["email"] for row in table(archive, "staff")} == {
        cast.sophie.email,
        cast.marc.email,
    }
    assert [row["first_name"] for row in table(archive, "walk_ins")] == ["Ana"]


def test_patients_are_those_seen_here_or_registered_here(cast: Cast, clinics: Clinics) -> None:
    patients = {int(row["id"]): row for row in table(export(cast), "patients")}
    assert set(patients) == {
        cast.marie_self.pk,
        cast.lea.pk,  # her visit was cancelled, she is registered with Dr Roy anyway
        clinics.zoe.pk,  # registered, never booked
        clinics.yves.pk,  # booked here, registered elsewhere
    }
    assert patients[clinics.zoe.pk]["family_doctor_id"] == str(cast.dr_roy.pk)
    # Another clinic's practitioner is not this clinic's record to hand out.
    assert patients[clinics.yves.pk]["family_doctor_id"] == ""


def test_health_data_is_decrypted(cast: Cast, clinics: Clinics) -> None:
    archive = export(cast)
    marie = next(r for r in table(archive, "patients") if r["id"] == str(cast.marie_self.pk))
    assert marie["ramq_number"] == clinics.marie_ramq
    assert marie["card_sequence_number"] == "01"
    assert marie["phone"] == "+15145550123"
    assert marie["date_of_birth"] == cast.marie_self.date_of_birth.isoformat()
    visits = {int(r["id"]): r for r in table(archive, "appointments")}
    assert visits[clinics.marie_visit.pk]["reason"] == "Toux depuis trois semaines"
    lea = visits[clinics.lea_visit.pk]
    assert (lea["status"], lea["cancelled_by"]) == ("cancelled", "clinic")
    assert lea["cancellation_reason"] == "L'infirmière est en formation"
    [ana] = table(archive, "walk_ins")
    assert ana["phone"] == "+14505550123"


def test_instants_are_utc_and_times_local_wall_clock(cast: Cast, clinics: Clinics) -> None:
    archive = export(cast)
    slot = next(r for r in table(archive, "slots") if r["id"] == str(clinics.marie_visit.slot_id))
    assert slot["start"] == "2026-11-25T14:00:00Z"  # 09:00 in Quebec (EST)
    [rule] = table(archive, "availability_rules")
    assert (rule["start_time"], rule["end_time"]) == ("09:00:00", "12:00:00")


def test_the_export_is_audited_once_and_once_per_patient(cast: Cast, clinics: Clinics) -> None:
    before = AuditEntry.objects.count()
    patients = ids(table(export(cast), "patients"))
    written = AuditEntry.objects.order_by("id")[before:]
    exports = [e for e in written if e.action == data_export.EXPORT_ACTION]
    assert [(e.actor_id, e.actor_role, e.clinic_id, e.patient_id) for e in exports] == [
        (cast.marc.pk, "clinic_admin", cast.laval.pk, None)
    ]
    per_patient = [e for e in written if e.action == data_export.PATIENT_ACTION]
    assert sorted(e.patient_id or 0 for e in per_patient) == sorted(patients)
    assert {(e.actor_id, e.clinic_id, e.object_type) for e in per_patient} == {
        (cast.marc.pk, cast.laval.pk, "patient")
    }
    assert len(written) == len(patients) + 1


def test_a_failed_export_writes_no_audit(
    cast: Cast, clinics: Clinics, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = AuditEntry.objects.count()

    def broken(*args: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(data_export, "datapackage", broken)
    with pytest.raises(OSError, match="disk full"):
        data_export.export_clinic(staff_context(cast.marc, cast.laval.pk))
    assert AuditEntry.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_booking_made_during_the_export_does_not_break_its_references(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the export reads one snapshot. Right after slots.csv is written,
    another connection books a new slot; appointments.csv, written next, must not name
    a slot that slots.csv does not have (at READ COMMITTED it would)."""
    if not on_postgres():
        pytest.skip("SQLite's IMMEDIATE transaction keeps every other writer out")
    assert not connection.in_atomic_block  # the export opens the transaction itself
    write_table = data_export._write_table

    def book_meanwhile() -> None:
        try:
            slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9))
            services.book_appointment(user=cast.paul, slot_id=slot.pk)
        finally:
            connection.close()

    def writing(archive: zipfile.ZipFile, table: data_export.Table, clinic: Any) -> list[int]:
        written = write_table(archive, table, clinic)
        if table.name == "slots":
            other = threading.Thread(target=book_meanwhile)
            other.start()
            other.join()
        return written

    monkeypatch.setattr(data_export, "_write_table", writing)
    archive = export(cast)
    assert Appointment.objects.filter(slot__clinic=cast.laval).count() == 1  # it happened
    assert table(archive, "appointments") == []
    assert table(archive, "slots") == []


def test_the_archive_name_has_the_clinic_and_the_day(cast: Cast) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    assert data_export.archive_name(ctx) == f"clinique-{cast.laval.pk}-donnees-2026-11-23.zip"


def test_the_documentation_names_every_file_and_column() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "clinic-data-export.md").read_text()
    for described in data_export.TABLES:
        section = doc.split(f"### `{described.path}`", 1)
        assert len(section) == 2, described.path
        body = section[1].split("\n### ", 1)[0]
        for column in described.columns:
            assert f"| `{column.name}` | {column.kind} |" in body, (described.path, column.name)


def test_one_query_per_file_whatever_the_number_of_rows(cast: Cast, clinics: Clinics) -> None:
    """No query per row (the audit's own inserts aside): a big clinic costs the same
    number of reads as a small one."""
    ctx = staff_context(cast.marc, cast.laval.pk)
    with CaptureQueriesContext(connection) as queries:
        data_export.export_clinic(ctx)
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if "audit_auditentry" not in q["sql"]
        and not q["sql"].startswith(("SET", "SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    assert len(reads) == len(data_export.TABLES), "\n".join(r[:70] for r in reads)


def test_free_text_that_a_spreadsheet_would_run_is_quoted_and_phones_are_not(
    cast: Cast, clinics: Clinics
) -> None:
    marie = cast.marie_self
    marie.first_name, marie.last_name = '=HYPERLINK("http://x.test")', "-cmd|calc"
    marie.save(update_fields=["first_name", "last_name"])
    archive = export(cast)
    row = next(r for r in table(archive, "patients") if r["id"] == str(marie.pk))
    assert row["first_name"] == '\'=HYPERLINK("http://x.test")'
    assert row["last_name"] == "'-cmd|calc"
    assert row["phone"] == "+15145550123"  # E.164 stays as stored
    assert row["ramq_number"] == clinics.marie_ramq
