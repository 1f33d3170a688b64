from __future__ import annotations

from datetime import timedelta

from django.http import HttpRequest
from ninja import Query, Router, Status

from rdv.accounts.models import User
from rdv.api.auth import BearerToken, optional_user, request_user
from rdv.api.limits import limit
from rdv.api.schemas import (
    AppointmentClinicOut,
    AppointmentOut,
    AppointmentPatientOut,
    AvailabilityOut,
    AvailabilityParams,
    BookIn,
    CancelIn,
    ErrorEnvelope,
    HoldOut,
    PractitionerOut,
    RescheduleIn,
    SlotClinicOut,
    SlotOut,
    local,
)
from rdv.patients.queries import patient_for_user
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from rdv.scheduling.queries import (
    FoundSlot,
    appointments_for_user,
    search_availability,
)
from rdv.scheduling.search import SearchRequest, availability_query

router = Router(tags=["booking"])
ERRORS = {
    400: ErrorEnvelope,
    401: ErrorEnvelope,
    404: ErrorEnvelope,
    409: ErrorEnvelope,
    422: ErrorEnvelope,
    429: ErrorEnvelope,
}


def _slot_out(found: FoundSlot) -> SlotOut:
    return SlotOut(
        id=found.slot_id,
        start=local(found.start),
        end=local(found.end),
        type=found.appointment_type,
        clinic=SlotClinicOut(
            id=found.clinic.pk,
            name=found.clinic.name,
            municipality=found.clinic.municipality_name,
            address=found.clinic.address,
            distance_km=found.distance_km,
        ),
        practitioner=PractitionerOut(
            id=found.practitioner.pk,
            display_name=found.practitioner.display_name,
            profession=found.practitioner.profession,
            languages=list(found.languages),
        ),
    )


@router.get(
    "/availability",
    response={
        200: AvailabilityOut,
        401: ErrorEnvelope,
        404: ErrorEnvelope,
        422: ErrorEnvelope,
        429: ErrorEnvelope,
    },
)
def availability(request: HttpRequest, params: Query[AvailabilityParams]) -> AvailabilityOut:
    """Free slots near a place: earliest first, then nearest. Anonymous visitors see public
    slots; a signed-in patient also sees slots reserved for their family doctor's patients."""
    limit(request, "search")
    query = availability_query(
        SearchRequest(
            near=params.near,
            radius_km=params.radius_km,
            date_from=params.date_from,
            date_to=params.date_to,
            appointment_type=params.type,
            language=params.language,
            family_doctor=params.family_doctor,
            patient_id=params.patient_id,
            limit=params.limit,
            offset=params.offset,
        ),
        optional_user(request),
    )
    page = search_availability(query)
    return AvailabilityOut(
        place=query.place.label,
        results=[_slot_out(f) for f in page.results],
        has_more=page.has_more,
        next_offset=params.offset + params.limit if page.has_more else None,
    )


@router.post("/slots/{slot_id}/hold", auth=BearerToken(), response={200: HoldOut, **ERRORS})
def hold(request: HttpRequest, slot_id: int, patient_id: int | None = None) -> HoldOut:
    """Hold a slot for a few minutes while the patient confirms (`patient_id`: a dependant)."""
    limit(request, "hold")
    held = services.hold_slot(user=request_user(request), slot_id=slot_id, patient_id=patient_id)
    return HoldOut(slot_id=held.slot_id, expires_at=local(held.expires_at))


def _appointment_out(appointment: Appointment) -> AppointmentOut:
    slot = appointment.slot
    clinic = slot.clinic
    practitioner = slot.practitioner
    return AppointmentOut(
        id=appointment.pk,
        status=appointment.status,
        start=local(slot.start),
        end=local(slot.end),
        type=slot.appointment_type,
        slot_id=slot.pk,
        reason=appointment.reason,
        clinic=AppointmentClinicOut(
            id=clinic.pk,
            name=clinic.name,
            municipality=clinic.municipality_name,
            address=clinic.address,
            phone=clinic.phone,
        ),
        practitioner=PractitionerOut(
            id=practitioner.pk,
            display_name=practitioner.display_name,
            profession=practitioner.profession,
            # .all() uses the list view's prefetch; values_list() would query per row.
            languages=sorted(language.code for language in practitioner.languages.all()),
        ),
        patient=AppointmentPatientOut(
            id=appointment.patient.pk, first_name=appointment.patient.first_name
        ),
        changeable_until=local(slot.start - timedelta(hours=clinic.cancellation_cutoff_hours)),
    )


def _reloaded(user: User, appointment_id: int) -> AppointmentOut:
    return _appointment_out(appointments_for_user(user).get(pk=appointment_id))


@router.post("/appointments", auth=BearerToken(), response={201: AppointmentOut, **ERRORS})
def book(request: HttpRequest, payload: BookIn) -> Status[AppointmentOut]:
    """Book a slot (201), or 409 if someone else got it first."""
    limit(request, "book")
    user = request_user(request)
    appointment = services.book_appointment(
        user=user, slot_id=payload.slot_id, patient_id=payload.patient_id, reason=payload.reason
    )
    return Status(201, _reloaded(user, appointment.pk))


@router.get(
    "/appointments",
    auth=BearerToken(),
    response={
        200: list[AppointmentOut],
        401: ErrorEnvelope,
        404: ErrorEnvelope,
        422: ErrorEnvelope,
    },
)
def my_appointments(request: HttpRequest, patient_id: int | None = None) -> list[AppointmentOut]:
    """Appointments of the signed-in user and the people they manage."""
    user = request_user(request)
    appointments = appointments_for_user(user).prefetch_related("slot__practitioner__languages")
    if patient_id is not None:
        appointments = appointments.filter(patient=patient_for_user(user, patient_id))
    return [_appointment_out(a) for a in appointments]


@router.post(
    "/appointments/{appointment_id}/cancel",
    auth=BearerToken(),
    response={200: AppointmentOut, **ERRORS},
)
def cancel(request: HttpRequest, appointment_id: int, payload: CancelIn) -> AppointmentOut:
    """Cancel before the clinic's cut-off. The body is `{}` or `{"reason": "…"}`."""
    user = request_user(request)
    services.cancel_appointment(user=user, appointment_id=appointment_id, reason=payload.reason)
    return _reloaded(user, appointment_id)


@router.post(
    "/appointments/{appointment_id}/reschedule",
    auth=BearerToken(),
    response={200: AppointmentOut, **ERRORS},
)
def reschedule(request: HttpRequest, appointment_id: int, payload: RescheduleIn) -> AppointmentOut:
    """Move the appointment to another slot: all or nothing."""
    user = request_user(request)
    services.reschedule_appointment(
        user=user, appointment_id=appointment_id, new_slot_id=payload.slot_id
    )
    return _reloaded(user, appointment_id)
