"""Clinic staff endpoints: everything under /clinics/{clinic_id}/, through one door.

Each handler first turns (user, clinic_id) into a StaffContext, which answers 404 for a
clinic the user does not belong to; every object is then looked up inside that clinic.
tests/security/test_clinic_isolation.py walks every route here with another clinic's ids.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from rdv.api.auth import BearerToken, request_user
from rdv.api.schemas import ErrorEnvelope, Text, local
from rdv.clinics import services
from rdv.clinics.models import Practitioner
from rdv.clinics.queries import staff_context
from rdv.notifications.queries import messages_for
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment

router = Router(tags=["clinic staff"], auth=BearerToken())
# Ids are checked against the database's 64-bit range before any lookup.
ObjectId = Annotated[int, Field(ge=1, le=2**63 - 1)]
ERRORS = {401: ErrorEnvelope, 404: ErrorEnvelope, 422: ErrorEnvelope}
CHANGE_ERRORS = {**ERRORS, 400: ErrorEnvelope, 409: ErrorEnvelope}  # 400: a body that is not JSON


class StaffPractitionerOut(Schema):
    id: int
    display_name: str
    profession: str
    is_active: bool


class StaffPatientOut(Schema):
    id: int
    first_name: str
    last_name: str
    date_of_birth: date


class StaffAppointmentOut(Schema):
    id: int
    status: str
    start: datetime
    end: datetime
    type: str
    reason: str
    confirmed: bool
    cancelled_by: str
    practitioner: StaffPractitionerOut
    patient: StaffPatientOut


class StaffMessageOut(Schema):
    """One notification about the appointment: what, how, and whether it went out (the
    address and the text stay out of it)."""

    kind: str
    channel: str
    status: str
    due_at: datetime
    sent_at: datetime | None
    attempts: int
    provider_status: str
    last_error: str


class ClinicCancelIn(Schema):
    reason: Text = Field(..., max_length=scheduling.CLINIC_REASON_MAX)


class AttendanceIn(Schema):
    status: Literal["arrived", "fulfilled", "noshow"]


class DayQuery(Schema):
    date: date


def _practitioner_out(practitioner: Practitioner) -> StaffPractitionerOut:
    return StaffPractitionerOut(
        id=practitioner.pk,
        display_name=practitioner.display_name,
        profession=practitioner.profession,
        is_active=practitioner.is_active,
    )


def _patient_out(patient: Patient) -> StaffPatientOut:
    return StaffPatientOut(
        id=patient.pk,
        first_name=patient.first_name,
        last_name=patient.last_name,
        date_of_birth=patient.date_of_birth,
    )


def _appointment_out(appointment: Appointment) -> StaffAppointmentOut:
    return StaffAppointmentOut(
        id=appointment.pk,
        status=appointment.status,
        start=local(appointment.slot.start),
        end=local(appointment.slot.end),
        type=appointment.slot.appointment_type,
        reason=appointment.reason,
        confirmed=appointment.confirmed_at is not None,
        cancelled_by=appointment.cancelled_by,
        practitioner=_practitioner_out(appointment.slot.practitioner),
        patient=_patient_out(appointment.patient),
    )


@router.get(
    "/clinics/{clinic_id}/practitioners", response={200: list[StaffPractitionerOut], **ERRORS}
)
def practitioners(request: HttpRequest, clinic_id: ObjectId) -> list[StaffPractitionerOut]:
    ctx = staff_context(request_user(request), clinic_id)
    return [_practitioner_out(p) for p in ctx.clinic.practitioners.order_by("last_name", "pk")]


@router.get("/clinics/{clinic_id}/agenda", response={200: list[StaffAppointmentOut], **ERRORS})
def agenda(
    request: HttpRequest, clinic_id: ObjectId, params: Query[DayQuery]
) -> list[StaffAppointmentOut]:
    """The clinic's appointments of one day (each patient shown is an audited read)."""
    ctx = staff_context(request_user(request), clinic_id)
    return [_appointment_out(a) for a in services.view_day(ctx, params.date)]


@router.get(
    "/clinics/{clinic_id}/appointments/{appointment_id}",
    response={200: StaffAppointmentOut, **ERRORS},
)
def appointment(
    request: HttpRequest, clinic_id: ObjectId, appointment_id: ObjectId
) -> StaffAppointmentOut:
    ctx = staff_context(request_user(request), clinic_id)
    return _appointment_out(services.view_appointment(ctx, appointment_id))


@router.post(
    "/clinics/{clinic_id}/appointments/{appointment_id}/cancel",
    response={200: StaffAppointmentOut, **CHANGE_ERRORS},
)
def cancel_appointment(
    request: HttpRequest, clinic_id: ObjectId, appointment_id: ObjectId, body: ClinicCancelIn
) -> StaffAppointmentOut:
    """Cancel for the clinic, at any time before the visit ends; the patient is told the
    reason. The time is offered again."""
    ctx = staff_context(request_user(request), clinic_id)
    return _appointment_out(
        scheduling.cancel_for_clinic(ctx, appointment_id=appointment_id, reason=body.reason)
    )


@router.post(
    "/clinics/{clinic_id}/appointments/{appointment_id}/attendance",
    response={200: StaffAppointmentOut, **CHANGE_ERRORS},
)
def record_attendance(
    request: HttpRequest, clinic_id: ObjectId, appointment_id: ObjectId, body: AttendanceIn
) -> StaffAppointmentOut:
    """Arrived (from the visit's day), fulfilled (after arrived), or no-show (once the visit
    has started: the patient gets the missed-appointment notice)."""
    ctx = staff_context(request_user(request), clinic_id)
    return _appointment_out(
        scheduling.record_attendance(ctx, appointment_id=appointment_id, status=body.status)
    )


@router.get(
    "/clinics/{clinic_id}/appointments/{appointment_id}/messages",
    response={200: list[StaffMessageOut], **ERRORS},
)
def appointment_messages(
    request: HttpRequest, clinic_id: ObjectId, appointment_id: ObjectId
) -> list[StaffMessageOut]:
    """The appointment's messages and their delivery, oldest first (an audited read)."""
    ctx = staff_context(request_user(request), clinic_id)
    found = services.view_appointment(ctx, appointment_id)
    return [
        StaffMessageOut(
            kind=m.kind,
            channel=m.channel,
            status=m.status,
            due_at=local(m.due_at),
            sent_at=local(m.sent_at) if m.sent_at else None,
            attempts=m.attempts,
            provider_status=m.provider_status,
            last_error=m.last_error,
        )
        for m in messages_for(found)
    ]


@router.get("/clinics/{clinic_id}/patients/{patient_id}", response={200: StaffPatientOut, **ERRORS})
def patient(request: HttpRequest, clinic_id: ObjectId, patient_id: ObjectId) -> StaffPatientOut:
    ctx = staff_context(request_user(request), clinic_id)
    return _patient_out(services.view_patient(ctx, patient_id))
