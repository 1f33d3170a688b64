"""What clinic staff do with patient data. Every read of a patient's data is audited.

All of it goes through a StaffContext (rdv.clinics.queries.staff_context), so nothing
here can reach another clinic's objects.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction

from rdv.audit import services as audit
from rdv.clinics.queries import StaffContext
from rdv.patients.models import Patient
from rdv.scheduling import queries
from rdv.scheduling.models import Appointment


def _viewed(
    ctx: StaffContext, action: str, patient_id: int, object_type: str, object_id: int
) -> None:
    audit.record(
        action,
        actor=ctx.user,
        role=ctx.role,
        subject=audit.Subject(
            object_type=object_type,
            object_id=str(object_id),
            patient_id=patient_id,
            clinic_id=ctx.clinic.pk,
        ),
    )


def view_day(ctx: StaffContext, day: date) -> list[Appointment]:
    """The clinic's appointments of one local day; one audit entry per patient shown."""
    with transaction.atomic():
        appointments = list(queries.clinic_day(ctx, day))
        for appointment in appointments:
            _viewed(ctx, "agenda.view", appointment.patient_id, "appointment", appointment.pk)
    return appointments


def view_appointment(ctx: StaffContext, appointment_id: int) -> Appointment:
    with transaction.atomic():
        appointment = queries.clinic_appointment(ctx, appointment_id)
        _viewed(ctx, "appointment.view", appointment.patient_id, "appointment", appointment.pk)
    return appointment


def view_patient(ctx: StaffContext, patient_id: int) -> Patient:
    with transaction.atomic():
        patient = queries.clinic_patient(ctx, patient_id)
        _viewed(ctx, "patient.view", patient.pk, "patient", patient.pk)
    return patient
