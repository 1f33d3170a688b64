"""Every write a patient (or the payment provider) makes to the appointment finder: file,
pay, cancel, answer an offer, and the free alerts. Each function is one transaction.

The rules of the matching itself live in rdv.finder.engine (and docs/finder.md); the
functions here hand it work after their commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.billing import services as billing
from rdv.billing.models import Payment, PaymentStatus
from rdv.clinics.models import Clinic, Practitioner
from rdv.clinics.services import PRACTITIONER_LANGUAGES
from rdv.core import clock, money
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.core.geo import Place, resolve_place
from rdv.finder import engine
from rdv.finder.models import (
    Alert,
    AlertScope,
    FinderRequest,
    Mode,
    Offer,
    OfferStatus,
    RequestStatus,
    Trigger,
)
from rdv.finder.queries import offer_for_user
from rdv.patients.queries import own_patient, patient_for_user
from rdv.scheduling.models import Appointment, AppointmentType
from rdv.scheduling.queries import type_fits

logger = logging.getLogger(__name__)

# Anti-hoarding: requests waiting for payment or searching, per account.
MAX_ACTIVE_REQUESTS = 3
MAX_ACTIVE_ALERTS = 10
MAX_TIME_WINDOWS = 14
# A failed payment counts too: its PaymentIntent can still be paid later (and would open
# the request), so leaving it out would let an account hold more than this many.
ACTIVE_STATUSES = (
    RequestStatus.AWAITING_PAYMENT,
    RequestStatus.PAYMENT_FAILED,
    RequestStatus.OPEN,
)
PATIENT_ROLE = "patient"


@dataclass(frozen=True)
class TimeWindow:
    weekday: int  # 0 = Monday … 6 = Sunday
    start: time
    end: time


@dataclass(frozen=True)
class RequestSpec:
    patient_id: int | None  # None: the account holder's own file
    mode: str  # Mode.BOOK / Mode.OFFER
    appointment_type: str
    place: str  # municipality, postal code or "lat,lon" (rdv.core.geo.resolve_place)
    radius_km: int
    earliest_date: date
    latest_date: date
    time_windows: tuple[TimeWindow, ...]
    language: str  # "" = any
    deadline: date  # stored as the end of that local day
    notify_by_email: bool
    notify_by_sms: bool


@dataclass(frozen=True)
class AlertSpec:
    scope: str  # AlertScope
    clinic_id: int | None
    practitioner_id: int | None
    place: str
    radius_km: int | None
    appointment_type: str  # "" = any


# --- Requests -----------------------------------------------------------------------------


def _place(text: str, field: str = "place") -> Place:
    place = resolve_place(text)
    if place is None:
        raise ValidationError(
            _("Unknown place. Enter a Quebec municipality or a postal code."),
            field=field,
            code="unknown_place",
        )
    return place


def _check_radius(radius_km: int | None) -> int:
    most = min(settings.SEARCH_MAX_RADIUS_KM, 200)
    if radius_km is None or not 1 <= radius_km <= most:
        raise ValidationError(
            _("Choose a distance between 1 and %(km)d km.") % {"km": most},
            field="radius_km",
            code="radius",
        )
    return radius_km


def _check_dates(spec: RequestSpec) -> None:
    today = clock.local_today()
    if spec.earliest_date < today:
        raise ValidationError(
            _("The first day cannot be in the past."), field="earliest_date", code="date_past"
        )
    if spec.latest_date < spec.earliest_date:
        raise ValidationError(
            _("The last day cannot be before the first day."),
            field="latest_date",
            code="date_range",
        )
    if (spec.latest_date - spec.earliest_date).days >= settings.SEARCH_MAX_DAYS:
        raise ValidationError(
            _("Search at most %(days)d days at a time.") % {"days": settings.SEARCH_MAX_DAYS},
            field="latest_date",
            code="date_range",
        )
    if spec.latest_date > today + timedelta(days=settings.SEARCH_MAX_AHEAD_DAYS):
        raise ValidationError(
            _("Search at most %(days)d days ahead.") % {"days": settings.SEARCH_MAX_AHEAD_DAYS},
            field="latest_date",
            code="date_range",
        )
    if (
        not today + timedelta(days=1)
        <= spec.deadline
        <= today + timedelta(days=settings.FINDER_MAX_DEADLINE_DAYS)
    ):
        raise ValidationError(
            _("Choose a deadline between tomorrow and %(days)d days from today.")
            % {"days": settings.FINDER_MAX_DEADLINE_DAYS},
            field="deadline",
            code="deadline_range",
        )
    if spec.deadline > spec.latest_date:
        raise ValidationError(
            _("The deadline cannot be after the last day you are available."),
            field="deadline",
            code="deadline_after_latest",
        )


def _check_windows(windows: tuple[TimeWindow, ...]) -> list[list[int | str]]:
    """The windows as stored: [[weekday, "HH:MM", "HH:MM"], …], sorted."""
    if len(windows) > MAX_TIME_WINDOWS:
        raise ValidationError(
            _("Give at most %(count)d time windows.") % {"count": MAX_TIME_WINDOWS},
            field="time_windows",
            code="too_many_windows",
        )
    stored: list[list[int | str]] = []
    for window in sorted(windows, key=lambda w: (w.weekday, w.start, w.end)):
        if not 0 <= window.weekday <= 6:
            raise ValidationError(
                _("Choose a day of the week."), field="time_windows", code="weekday"
            )
        if window.start >= window.end:
            raise ValidationError(
                _("Each time window must end after it starts."),
                field="time_windows",
                code="window_order",
            )
        stored.append(
            [window.weekday, window.start.strftime("%H:%M"), window.end.strftime("%H:%M")]
        )
    return stored


def _check_channels(user: User, spec: RequestSpec) -> None:
    if not (spec.notify_by_email or spec.notify_by_sms):
        raise ValidationError(
            _("Choose how we reach you: email, text message or both."),
            field="notify_by_email",
            code="no_channel",
        )
    if spec.notify_by_sms:
        me = own_patient(user)
        if me is None or not me.phone:
            raise ValidationError(
                _("Add a mobile phone number to your profile to be reached by text message."),
                field="notify_by_sms",
                code="no_phone",
            )


def _check_spec(user: User, spec: RequestSpec) -> tuple[Place, list[list[int | str]]]:
    """Every refusal with the field it concerns; nothing is written before all pass."""
    if user.email_verified_at is None:
        raise PermissionDenied(
            _("Confirm your email address before booking."), code="email_unverified"
        )
    if spec.mode not in Mode.values:
        raise ValidationError(_("Choose a mode."), field="mode", code="mode")
    if spec.appointment_type not in AppointmentType.values:
        raise ValidationError(
            _("Unknown appointment type."), field="appointment_type", code="unknown_type"
        )
    place = _place(spec.place)
    _check_radius(spec.radius_km)
    _check_dates(spec)
    windows = _check_windows(spec.time_windows)
    if spec.language and spec.language not in PRACTITIONER_LANGUAGES:
        raise ValidationError(
            _("Choose a language from the list."), field="language", code="language"
        )
    _check_channels(user, spec)
    return place, windows


def _subject(request: FinderRequest) -> audit.Subject:
    return audit.Subject(
        object_type="finder_request", object_id=str(request.pk), patient_id=request.patient_id
    )


def _lock_account(user: User) -> None:
    """Serialise one account's requests (or alerts): the count checked is the count kept."""
    if not User.objects.select_for_update().filter(pk=user.pk, is_active=True).exists():
        raise PermissionDenied(_("This account is closed."), code="account_closed")


def create_request(*, user: User, spec: RequestSpec) -> FinderRequest:
    """File a finder request, waiting for payment (18.95 $ plus taxes, settings).

    Everything is checked first (a ValidationError names the field); the request and its
    pending payment are written in one transaction, with the account row locked so at most
    MAX_ACTIVE_REQUESTS are waiting or searching at once. The payment is then created at
    the provider outside the transaction (it waits on the network): should the provider
    be unavailable, the request stays waiting for payment and paying can be retried
    (billing.create_with_provider is idempotent). The request enters the queue only when
    its payment succeeds (on_payment_succeeded)."""
    patient = patient_for_user(user, spec.patient_id)
    place, windows = _check_spec(user, spec)
    first_day = clock.local_midnight(spec.earliest_date)
    if not type_fits(patient.date_of_birth, spec.appointment_type, first_day):
        raise ValidationError(
            _("This appointment type is for children aged 0 to 5."),
            field="appointment_type",
            code="patient_not_eligible",
        )
    now = clock.now()
    with transaction.atomic():
        _lock_account(user)
        active = FinderRequest.objects.filter(account=user, status__in=ACTIVE_STATUSES).count()
        if active >= MAX_ACTIVE_REQUESTS:
            raise Conflict(
                _("You already have %(count)d requests in progress: wait for one to end.")
                % {"count": MAX_ACTIVE_REQUESTS},
                code="too_many_requests",
            )
        payment = billing.start_payment(account=user, price=money.finder_price())
        request = FinderRequest.objects.create(
            account=user,
            patient=patient,
            mode=spec.mode,
            appointment_type=spec.appointment_type,
            place_label=place.label,
            latitude=place.latitude,
            longitude=place.longitude,
            radius_km=spec.radius_km,
            earliest_date=spec.earliest_date,
            latest_date=spec.latest_date,
            time_windows=windows,
            language=spec.language,
            deadline=clock.local_midnight(spec.deadline + timedelta(days=1)),
            notify_by_email=spec.notify_by_email,
            notify_by_sms=spec.notify_by_sms,
            created_at=now,
            payment=payment,
        )
        audit.record(
            "finder.request_filed", actor=user, role=PATIENT_ROLE, subject=_subject(request)
        )
    try:
        billing.create_with_provider(payment.pk)
    except billing.PaymentUnavailable:
        logger.warning("payment of finder request %s not created yet", request.pk)
    request.refresh_from_db()
    return request


def _request_of(payment: Payment) -> FinderRequest | None:
    return FinderRequest.objects.filter(payment_id=payment.pk).first()


def on_payment_succeeded(payment: Payment) -> None:
    """Billing recorded the payment paid (in its transaction): the request enters the
    queue now (filed_at: its place in line), by compare-and-set from waiting (or from a
    failed attempt the provider later completed). A request cancelled before the money
    arrived is refunded at once. Matching for it runs after the commit."""
    request = _request_of(payment)
    if request is None:
        # Its request is gone (the person it was for was removed with their account):
        # the money goes back.
        billing.request_refund(payment, reason="no_request")
        return
    now = clock.now()
    opened = FinderRequest.objects.filter(
        pk=request.pk,
        status__in=[RequestStatus.AWAITING_PAYMENT, RequestStatus.PAYMENT_FAILED],
    ).update(status=RequestStatus.OPEN, filed_at=now)
    if opened:
        engine.after_commit_match_request(request.pk)
        return
    request.refresh_from_db()
    if request.status in (RequestStatus.CANCELLED, RequestStatus.EXPIRED):
        refund = billing.request_refund(payment, reason="cancelled")
        if refund is not None:
            engine.queue_refunded(request, refund.amount_cents)


def lock_request_of_payment(payment_id: int) -> None:
    """Billing calls this before it locks a payment to settle it: a request is always
    locked before its payment (cancelling, expiring and deleting lock the request first),
    so the two orders never meet and deadlock."""
    list(
        FinderRequest.objects.select_for_update()
        .filter(payment_id=payment_id)
        .values_list("pk", flat=True)
    )


def on_payment_failed(payment: Payment) -> None:
    """The provider refused the payment: a waiting request shows it (and may be paid
    again or cancelled)."""
    FinderRequest.objects.filter(
        payment_id=payment.pk, status=RequestStatus.AWAITING_PAYMENT
    ).update(status=RequestStatus.PAYMENT_FAILED)


def _lock_own_request(user: User, request_id: int) -> FinderRequest:
    """The account's request, row-locked: the first lock of every change to a request
    (then its offer, then the slot), so concurrent changes never deadlock."""
    request = FinderRequest.objects.select_for_update().filter(pk=request_id, account=user).first()
    if request is None:
        raise NotFound(_("Request not found."), code="finder_request_not_found")
    return request


def cancel_request(*, user: User, request_id: int) -> FinderRequest:
    """The patient cancels their request.

    Waiting for payment (or failed): cancelled, the pending payment too. Searching:
    cancelled, refunded in full, and a pending offer is withdrawn (its slot goes to the
    next request in line). Booked, expired or already cancelled: Conflict (409), nothing
    changes. The status changes by compare-and-set under the row lock, so a cancellation
    racing the deadline sweep refunds once."""
    now = clock.now()
    with transaction.atomic():
        request = _lock_own_request(user, request_id)
        if request.status in (RequestStatus.AWAITING_PAYMENT, RequestStatus.PAYMENT_FAILED):
            _close(request, RequestStatus.CANCELLED, now)
            if request.payment is not None and request.payment.status == PaymentStatus.PENDING:
                billing.cancel_pending_payment(request.payment)
        elif request.status == RequestStatus.OPEN:
            _close(request, RequestStatus.CANCELLED, now)
            engine.withdraw_pending_offer(request, now=now)
            engine.refund(request, reason="cancelled")
        else:
            raise Conflict(_not_cancellable(request.status), code="not_cancellable")
        audit.record("finder.cancelled", actor=user, role=PATIENT_ROLE, subject=_subject(request))
    request.refresh_from_db()
    return request


def close_requests_of_closing_account(*, user: User) -> int:
    """Inside account deletion's transaction (rdv.accounts.privacy.delete_account, which
    holds the account's row lock): every request still waiting or searching is cancelled,
    a paid one refunded in full and its pending offer withdrawn. Without this, deleting
    the account's patients would delete their requests and keep the money. Returns how
    many requests were closed."""
    return _close_requests(user, FinderRequest.objects.filter(account=user), "account_closed")


def close_requests_of_patient(*, user: User, patient_id: int) -> int:
    """Inside rdv.patients.services.remove_dependant's transaction (account row locked):
    the same for the requests made for the person removed."""
    requests = FinderRequest.objects.filter(account=user, patient_id=patient_id)
    return _close_requests(user, requests, "patient_removed")


def _close_requests(user: User, requests: QuerySet[FinderRequest], reason: str) -> int:
    now = clock.now()
    waiting = (RequestStatus.AWAITING_PAYMENT, RequestStatus.PAYMENT_FAILED, RequestStatus.OPEN)
    closed = 0
    for request in (
        requests.select_for_update(of=("self",))
        .select_related("payment")
        .filter(status__in=waiting)
        .order_by("pk")
    ):
        was_open = request.status == RequestStatus.OPEN
        _close(request, RequestStatus.CANCELLED, now)
        if was_open:
            engine.withdraw_pending_offer(request, now=now)
            engine.refund(request, reason=reason)
        elif request.payment is not None and request.payment.status == PaymentStatus.PENDING:
            billing.cancel_pending_payment(request.payment)
        audit.record("finder.cancelled", actor=user, role=PATIENT_ROLE, subject=_subject(request))
        closed += 1
    return closed


def _not_cancellable(status: str) -> str:
    if status == RequestStatus.BOOKED:
        return str(_("This request has already booked an appointment: cancel the appointment."))
    if status == RequestStatus.EXPIRED:
        return str(_("This request has already ended and was refunded."))
    return str(_("This request is already cancelled."))


def _close(request: FinderRequest, status: str, now: datetime) -> None:
    """Under the request's row lock: leave the queue."""
    FinderRequest.objects.filter(pk=request.pk).update(status=status, closed_at=now)
    request.status = status
    request.closed_at = now


# --- Offers -------------------------------------------------------------------------------


def _expired() -> Conflict:
    return Conflict(_("This offer has expired."), code="offer_expired")


def accept_offer(*, user: User, offer_id: int) -> Appointment:
    """Take the slot held for the request: booked for its patient by the same
    compare-and-set as any booking (scheduling.book_for_finder, with the offer's holder
    key), the request closed as booked. An expired offer (or one no longer waiting) is a
    Conflict and nothing changes; the sweep hands its slot on."""
    offer = offer_for_user(user, offer_id)
    now = clock.now()
    with transaction.atomic():
        # The account before the request: booking locks the account, and account
        # deletion takes the account, then its requests.
        _lock_account(user)
        request = _lock_own_request(user, offer.request_id)
        locked = Offer.objects.select_for_update().get(pk=offer.pk)
        if locked.status == OfferStatus.PENDING and locked.expires_at <= now:
            raise _expired()
        if locked.status != OfferStatus.PENDING or request.status != RequestStatus.OPEN:
            raise Conflict(
                _("This offer is no longer waiting for your answer."), code="offer_closed"
            )
        appointment = engine.book_offer(request, locked, now=now)
    return appointment


def decline_offer(*, user: User, offer_id: int) -> Offer:
    """Say no: the slot's hold is released and the slot goes to the next request in
    line (the request stays in the queue for other slots, never offered this one again)."""
    offer = offer_for_user(user, offer_id)
    now = clock.now()
    with transaction.atomic():
        _lock_own_request(user, offer.request_id)
        locked = Offer.objects.select_for_update().get(pk=offer.pk)
        if locked.status != OfferStatus.PENDING:
            raise Conflict(
                _("This offer is no longer waiting for your answer."), code="offer_closed"
            )
        if locked.expires_at <= now:
            raise _expired()
        engine.end_offer(
            locked, status=OfferStatus.DECLINED, trigger=Trigger.OFFER_DECLINED, now=now
        )
        audit.record(
            "finder.offer_declined",
            actor=user,
            role=PATIENT_ROLE,
            subject=audit.Subject(object_type="finder_offer", object_id=str(offer.pk)),
        )
    locked.refresh_from_db()
    return locked


# --- Alerts -------------------------------------------------------------------------------


def _alert_target(spec: AlertSpec) -> dict[str, object]:
    """The columns of the one thing the alert watches, checked."""
    if spec.scope == AlertScope.CLINIC:
        clinic = Clinic.objects.filter(pk=spec.clinic_id or 0, is_active=True).first()
        if clinic is None:
            raise ValidationError(_("Choose a clinic."), field="clinic_id", code="clinic")
        return {"clinic": clinic}
    if spec.scope == AlertScope.PRACTITIONER:
        practitioner = Practitioner.objects.filter(
            pk=spec.practitioner_id or 0, is_active=True, clinic__is_active=True
        ).first()
        if practitioner is None:
            raise ValidationError(
                _("Choose a practitioner."), field="practitioner_id", code="practitioner"
            )
        return {"practitioner": practitioner}
    if spec.scope == AlertScope.AREA:
        place = _place(spec.place)
        return {
            "place_label": place.label,
            "latitude": place.latitude,
            "longitude": place.longitude,
            "radius_km": _check_radius(spec.radius_km),
        }
    raise ValidationError(_("Choose what to watch."), field="scope", code="scope")


def create_alert(*, user: User, spec: AlertSpec) -> Alert:
    """A free "alert me": a message when a fitting slot is published or freed at a
    clinic, with a practitioner or in an area; no hold, no payment. At most
    MAX_ACTIVE_ALERTS per account (the account row is locked while counting)."""
    if spec.appointment_type and spec.appointment_type not in AppointmentType.values:
        raise ValidationError(
            _("Unknown appointment type."), field="appointment_type", code="unknown_type"
        )
    target = _alert_target(spec)
    with transaction.atomic():
        _lock_account(user)
        if Alert.objects.filter(account=user, is_active=True).count() >= MAX_ACTIVE_ALERTS:
            raise Conflict(
                _("You already have %(count)d alerts: remove one first.")
                % {"count": MAX_ACTIVE_ALERTS},
                code="too_many_alerts",
            )
        alert = Alert.objects.create(
            account=user,
            scope=spec.scope,
            appointment_type=spec.appointment_type,
            created_at=clock.now(),
            **target,
        )
        audit.record(
            "finder.alert.add",
            actor=user,
            role=PATIENT_ROLE,
            subject=audit.Subject(object_type="finder_alert", object_id=str(alert.pk)),
        )
    return alert


def remove_alert(*, user: User, alert_id: int) -> None:
    """Stop an alert of one's own (someone else's: NotFound). The row goes: an alert
    holds nothing worth keeping."""
    with transaction.atomic():
        deleted, _rows = Alert.objects.filter(pk=alert_id, account=user).delete()
        if not deleted:
            raise NotFound(_("Alert not found."), code="finder_alert_not_found")
        audit.record(
            "finder.alert.remove",
            actor=user,
            role=PATIENT_ROLE,
            subject=audit.Subject(object_type="finder_alert", object_id=str(alert_id)),
        )
