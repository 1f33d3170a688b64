"""/api/v1/finder: the appointment finder's requests, offers, receipts and alerts.

Thin, like every router here: parse, call one service of rdv.finder.services (reads
through rdv.finder.queries, which answer 404 for someone else's request, offer or alert),
and render. With Stripe, a new request answers the PaymentIntent's client_secret and the
publishable key: the client confirms the payment with Stripe, and the webhook
(/webhooks/stripe/) opens the request.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from rdv.api.auth import BearerToken, request_user
from rdv.api.limits import limit
from rdv.api.schemas import ErrorEnvelope, Text, local
from rdv.billing import receipts
from rdv.billing.models import Payment, PaymentStatus, Provider, Refund
from rdv.core.errors import NotFound
from rdv.finder import queries, services
from rdv.finder.models import Alert, FinderRequest, Offer
from rdv.finder.services import MAX_TIME_WINDOWS

router = Router(tags=["finder"], auth=BearerToken())
ERRORS: dict[int, Any] = {
    400: ErrorEnvelope,
    401: ErrorEnvelope,
    403: ErrorEnvelope,
    404: ErrorEnvelope,
    409: ErrorEnvelope,
    422: ErrorEnvelope,
    429: ErrorEnvelope,
}
READ_ERRORS: dict[int, Any] = {401: ErrorEnvelope, 404: ErrorEnvelope, 422: ErrorEnvelope}


class TimeWindowIn(Schema):
    weekday: int = Field(..., ge=0, le=6, description="0 = Monday … 6 = Sunday")
    start: time = Field(..., description='Local wall-clock time, "HH:MM"')
    end: time = Field(..., description='Local wall-clock time, "HH:MM"')

    @field_validator("start", "end")
    @classmethod
    def local_minutes(cls, value: time) -> time:
        """Windows are Quebec wall-clock minutes: an offset or seconds would be silently
        misread (and an offset-aware time cannot be compared with a naive one)."""
        if value.tzinfo is not None or value.second or value.microsecond:
            raise PydanticCustomError("local_time", "a local time as HH:MM")
        return value


class RequestIn(Schema):
    # None: the account holder's own file; else one of their family members.
    patient_id: int | None = Field(None, ge=1, le=2**31 - 1)
    mode: Text = Field(..., max_length=5, description='"book" or "offer"')
    appointment_type: Text = Field(..., max_length=20)
    place: Text = Field(..., max_length=100, description="A municipality or postal code")
    radius_km: int = Field(25, ge=1, le=200)
    earliest_date: date
    latest_date: date
    time_windows: list[TimeWindowIn] = Field(default_factory=list, max_length=MAX_TIME_WINDOWS)
    language: Text = Field("", max_length=2, description='ISO 639-1, or "" for any')
    deadline: date = Field(..., description="The search ends at the end of this day")
    notify_by_email: bool = True
    notify_by_sms: bool = False


class TimeWindowOut(Schema):
    weekday: int
    start: str
    end: str


class PaymentOut(Schema):
    provider: str
    status: str
    currency: str
    price_cents: int
    gst_cents: int
    qst_cents: int
    total_cents: int
    receipt_number: str | None
    paid_at: datetime | None
    refund_status: str | None
    # Stripe, while the payment is pending: what the client confirms the PaymentIntent with.
    client_secret: str | None
    publishable_key: str | None


class OfferOut(Schema):
    id: int
    status: str
    offered_at: datetime
    expires_at: datetime
    slot_id: int
    start: datetime
    end: datetime
    clinic_name: str
    clinic_address: str
    practitioner: str


class RequestOut(Schema):
    id: int
    status: str
    mode: str
    patient_id: int
    appointment_type: str
    place: str
    latitude: float
    longitude: float
    radius_km: int
    earliest_date: date
    latest_date: date
    time_windows: list[TimeWindowOut]
    language: str
    deadline: datetime
    notify_by_email: bool
    notify_by_sms: bool
    created_at: datetime
    filed_at: datetime | None
    closed_at: datetime | None
    appointment_id: int | None
    payment: PaymentOut | None
    offers: list[OfferOut]


class AlertIn(Schema):
    scope: Text = Field(..., max_length=12, description='"clinic", "practitioner" or "area"')
    clinic_id: int | None = Field(None, ge=1, le=2**31 - 1)
    practitioner_id: int | None = Field(None, ge=1, le=2**31 - 1)
    place: Text = Field("", max_length=100)
    radius_km: int | None = Field(None, ge=1, le=200)
    appointment_type: Text = Field("", max_length=20, description='"" for any type')


class AlertOut(Schema):
    id: int
    scope: str
    clinic_id: int | None
    practitioner_id: int | None
    place: str
    radius_km: int | None
    appointment_type: str
    created_at: datetime


def _refund_status(payment: Payment) -> str | None:
    try:
        return payment.refund.status
    except Refund.DoesNotExist:
        return None


def _payment_out(payment: Payment) -> PaymentOut:
    stripe_pending = payment.provider == Provider.STRIPE and payment.status == PaymentStatus.PENDING
    return PaymentOut(
        provider=payment.provider,
        status=payment.status,
        currency=payment.currency,
        price_cents=payment.price_cents,
        gst_cents=payment.gst_cents,
        qst_cents=payment.qst_cents,
        total_cents=payment.total_cents,
        receipt_number=payment.receipt_number,
        paid_at=local(payment.paid_at) if payment.paid_at else None,
        refund_status=_refund_status(payment),
        client_secret=(payment.client_secret or None) if stripe_pending else None,
        publishable_key=(settings.STRIPE_PUBLISHABLE_KEY or None) if stripe_pending else None,
    )


def _offer_out(offer: Offer) -> OfferOut:
    slot = offer.slot
    return OfferOut(
        id=offer.pk,
        status=offer.status,
        offered_at=local(offer.offered_at),
        expires_at=local(offer.expires_at),
        slot_id=slot.pk,
        start=local(slot.start),
        end=local(slot.end),
        clinic_name=slot.clinic.name,
        clinic_address=f"{slot.clinic.address}, {slot.clinic.municipality_name}",
        practitioner=slot.practitioner.display_name,
    )


def _windows(stored: Any) -> list[TimeWindowOut]:
    return [TimeWindowOut(weekday=w[0], start=w[1], end=w[2]) for w in stored or []]


def _request_out(found: FinderRequest) -> RequestOut:
    return RequestOut(
        id=found.pk,
        status=found.status,
        mode=found.mode,
        patient_id=found.patient_id,
        appointment_type=found.appointment_type,
        place=found.place_label,
        latitude=found.latitude,
        longitude=found.longitude,
        radius_km=found.radius_km,
        earliest_date=found.earliest_date,
        latest_date=found.latest_date,
        time_windows=_windows(found.time_windows),
        language=found.language,
        deadline=local(found.deadline),
        notify_by_email=found.notify_by_email,
        notify_by_sms=found.notify_by_sms,
        created_at=local(found.created_at),
        filed_at=local(found.filed_at) if found.filed_at else None,
        closed_at=local(found.closed_at) if found.closed_at else None,
        appointment_id=found.appointment_id,
        payment=_payment_out(found.payment) if found.payment is not None else None,
        offers=[_offer_out(o) for o in queries.offers_for(found)],
    )


def _reloaded(request: HttpRequest, request_id: int) -> RequestOut:
    return _request_out(queries.request_for_user(request_user(request), request_id))


def _alert_out(alert: Alert) -> AlertOut:
    return AlertOut(
        id=alert.pk,
        scope=alert.scope,
        clinic_id=alert.clinic_id,
        practitioner_id=alert.practitioner_id,
        place=alert.place_label,
        radius_km=alert.radius_km,
        appointment_type=alert.appointment_type,
        created_at=local(alert.created_at),
    )


@router.post("/requests", response={201: RequestOut, **ERRORS})
def create_request(request: HttpRequest, payload: RequestIn) -> Status[RequestOut]:
    """File a request (201), waiting for payment: pay with the test provider's page, or
    confirm `payment.client_secret` with Stripe; the search starts once paid."""
    limit(request, "book")
    spec = services.RequestSpec(
        patient_id=payload.patient_id,
        mode=payload.mode,
        appointment_type=payload.appointment_type,
        place=payload.place,
        radius_km=payload.radius_km,
        earliest_date=payload.earliest_date,
        latest_date=payload.latest_date,
        time_windows=tuple(
            services.TimeWindow(weekday=w.weekday, start=w.start, end=w.end)
            for w in payload.time_windows
        ),
        language=payload.language,
        deadline=payload.deadline,
        notify_by_email=payload.notify_by_email,
        notify_by_sms=payload.notify_by_sms,
    )
    created = services.create_request(user=request_user(request), spec=spec)
    return Status(201, _reloaded(request, created.pk))


@router.get("/requests", response={200: list[RequestOut], 401: ErrorEnvelope})
def my_requests(request: HttpRequest) -> list[RequestOut]:
    """The account's requests, newest first, with their offers and payment."""
    return [_request_out(r) for r in queries.requests_for_user(request_user(request))]


@router.get("/requests/{request_id}", response={200: RequestOut, **READ_ERRORS})
def one_request(request: HttpRequest, request_id: int) -> RequestOut:
    """What was searched, its status, offers, payment, amounts and refund."""
    return _reloaded(request, request_id)


@router.post("/requests/{request_id}/cancel", response={200: RequestOut, **ERRORS})
def cancel_request(request: HttpRequest, request_id: int) -> RequestOut:
    """Stop a search: unpaid, nothing is charged; paid, a full refund; booked or ended: 409."""
    services.cancel_request(user=request_user(request), request_id=request_id)
    return _reloaded(request, request_id)


@router.get(
    "/requests/{request_id}/receipt",
    response=READ_ERRORS,
    openapi_extra={
        "responses": {
            200: {
                "description": "The receipt (PDF), French first",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def receipt(request: HttpRequest, request_id: int) -> HttpResponse:
    """The receipt of a paid request (PDF); 404 before payment."""
    found = queries.request_for_user(request_user(request), request_id)
    payment = found.payment
    if payment is None or payment.status != PaymentStatus.SUCCEEDED:
        raise NotFound(code="no_receipt")
    language = getattr(request, "LANGUAGE_CODE", "fr")
    response = HttpResponse(
        receipts.receipt_pdf(payment, language=language), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="recu-{payment.receipt_number}.pdf"'
    response["Cache-Control"] = "no-store"
    return response


@router.post("/offers/{offer_id}/accept", response={200: RequestOut, **ERRORS})
def accept_offer(request: HttpRequest, offer_id: int) -> RequestOut:
    """Book the offered slot (its request is then booked); an expired offer is 409."""
    limit(request, "book")
    user = request_user(request)
    offer = queries.offer_for_user(user, offer_id)
    services.accept_offer(user=user, offer_id=offer_id)
    return _reloaded(request, offer.request_id)


@router.post("/offers/{offer_id}/decline", response={200: RequestOut, **ERRORS})
def decline_offer(request: HttpRequest, offer_id: int) -> RequestOut:
    """Let the slot go to the next request in line; the search goes on."""
    offer = services.decline_offer(user=request_user(request), offer_id=offer_id)
    return _reloaded(request, offer.request_id)


@router.get("/alerts", response={200: list[AlertOut], 401: ErrorEnvelope})
def my_alerts(request: HttpRequest) -> list[AlertOut]:
    """The account's free alerts."""
    return [_alert_out(a) for a in queries.alerts_for_user(request_user(request))]


@router.post("/alerts", response={201: AlertOut, **ERRORS})
def create_alert(request: HttpRequest, payload: AlertIn) -> Status[AlertOut]:
    """A free alert about a clinic, a practitioner or an area (no hold, no payment)."""
    alert = services.create_alert(
        user=request_user(request),
        spec=services.AlertSpec(
            scope=payload.scope,
            clinic_id=payload.clinic_id,
            practitioner_id=payload.practitioner_id,
            place=payload.place,
            radius_km=payload.radius_km,
            appointment_type=payload.appointment_type,
        ),
    )
    return Status(201, _alert_out(alert))


@router.delete("/alerts/{alert_id}", response={204: None, **ERRORS})
def remove_alert(request: HttpRequest, alert_id: int) -> Status[None]:
    """Stop an alert (someone else's: 404)."""
    services.remove_alert(user=request_user(request), alert_id=alert_id)
    return Status(204, None)
