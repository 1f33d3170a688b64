"""Review R1: the clinic's full export holds every file the clinic itself keeps.

The front desk creates a file for a caller without an account (rdv.patients.services.
create_caller) before, and apart from, booking them. Such a file exists nowhere but at
that clinic, so the clinic's export (its copy to keep or take elsewhere) must hold it even
when no appointment was booked yet; another clinic's caller files stay out.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date

from rdv.audit.models import AuditEntry
from rdv.clinics import data_export
from rdv.clinics.queries import staff_context
from rdv.patients.services import create_caller
from tests.conftest import Cast


def _caller(cast: Cast, clinic_id: int, admin_first_name: str) -> int:
    user = cast.marc if clinic_id == cast.laval.pk else cast.karim
    return create_caller(
        staff_context(user, clinic_id),
        first_name=admin_first_name,
        last_name="Tremblay",
        last_name_at_birth="",
        date_of_birth=date(1941, 3, 2),
        ramq_number="",
        card_sequence_number="",
        phone="4505550199",
    ).pk


def test_the_clinics_own_caller_files_are_exported_even_before_a_booking(cast: Cast) -> None:
    gerard = _caller(cast, cast.laval.pk, "Gérard")
    other = _caller(cast, cast.montreal.pk, "Huguette")
    before = AuditEntry.objects.count()
    archive = zipfile.ZipFile(
        io.BytesIO(data_export.export_clinic(staff_context(cast.marc, cast.laval.pk)).read())
    )
    text = archive.read("patients.csv").decode("utf-8")
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text, newline=""))}
    assert gerard in rows
    assert (rows[gerard]["first_name"], rows[gerard]["phone"]) == ("Gérard", "+14505550199")
    assert other not in rows
    assert "Huguette" not in text
    audited = AuditEntry.objects.filter(pk__gt=before, action=data_export.PATIENT_ACTION)
    assert gerard in set(audited.values_list("patient_id", flat=True))
