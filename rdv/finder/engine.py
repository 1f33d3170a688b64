"""The matching engine: who gets a slot that opens, and when. The rules, and why, are in
docs/finder.md; in short:

- A slot FITS a request when it is free, in the future, open to the public at that
  moment (never a reserved slot not yet released), not held, at an active clinic with an
  active practitioner; of the request's type; on a local day in [earliest, latest];
  inside one of its weekly windows (if it has any); at a clinic within its radius; with a
  practitioner speaking its language (if one is set); and the patient fits the type.
- ELIGIBLE requests for a slot: open, before their deadline, with no pending offer, never
  offered this slot before, and the slot fits. They are served in (filed_at, id) order;
  the first that can take it wins (book mode: booked at once; offer mode: the slot is
  held for it FINDER_OFFER_MINUTES).
- Decisions are taken one at a time (an advisory lock on PostgreSQL, SQLite's single
  writer), each in one transaction that writes exactly one MatchDecision. Public bookings
  never wait for the engine: the slot's compare-and-set decides who was first.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.billing import services as billing
from rdv.clinics.models import PractitionerLanguage
from rdv.core import clock
from rdv.core.errors import Conflict, PermissionDenied, SlotUnavailable, ValidationError
from rdv.core.geo import Place, bounding_box, distance_km
from rdv.finder.models import (
    Alert,
    AlertScope,
    FinderRequest,
    MatchDecision,
    Mode,
    Offer,
    OfferStatus,
    Outcome,
    RequestStatus,
    SlotEvent,
    Trigger,
)
from rdv.notifications import finder_mail
from rdv.notifications.models import Channel
from rdv.notifications.services import after_quiet_hours
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, AppointmentType, CardClaim, Slot, SlotStatus
from rdv.scheduling.queries import (
    AvailabilityQuery,
    is_open_to_public,
    open_to_public,
    search_availability,
    type_fits,
)

logger = logging.getLogger(__name__)

# Any constant: the transaction-scoped advisory lock every engine decision takes.
ENGINE_LOCK = 0x5244_5646_494E_4452  # "RDVFINDR"
ENGINE_ROLE = "finder"
# A decision stores at most this many eligible ids (eligible_count has them all): the
# winner is always among the first, and a busy area's decision stays a small row.
ELIGIBLE_STORED = 1000
# match_request gives up after trying this many slots in one go (each one either went to
# an earlier request or was taken meanwhile); the next event will try again.
MAX_ROUNDS = 10
SEARCH_PAGE = 50
SEARCH_MAX_OFFSET = 1000
EVENT_BATCH = 500
# Triggers after which a slot left free is worth a free alert.
ALERT_TRIGGERS = (
    Trigger.PUBLISHED,
    Trigger.FREED,
    Trigger.RELEASED,
    Trigger.HOLD_EXPIRED,
    Trigger.OFFER_DECLINED,
    Trigger.OFFER_EXPIRED,
)


def _serialise() -> None:
    """One engine decision at a time. PostgreSQL: an advisory lock held until this
    transaction ends. SQLite: every transaction is BEGIN IMMEDIATE (settings), so its one
    writer already serialises decisions."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ENGINE_LOCK])


# --- Fitting: one definition for both directions (slot → requests, request → slots) ------


@dataclass(frozen=True)
class SlotFacts:
    """What the rules need to know about a slot, read once per decision."""

    slot_id: int
    start: datetime
    appointment_type: str
    local_day: date
    weekday: int
    local_start: str  # "HH:MM"
    local_end: str  # "HH:MM"; "24:00" when it ends on another day
    latitude: float
    longitude: float
    languages: frozenset[str]


@dataclass(frozen=True)
class Wish:
    """What a request asks for (the columns the fit needs)."""

    request_id: int
    appointment_type: str
    earliest_date: date
    latest_date: date
    windows: tuple[tuple[int, str, str], ...]
    latitude: float
    longitude: float
    radius_km: int
    language: str
    date_of_birth: date | None  # only read for the 0-5 years type


def slot_facts(slot: Slot) -> SlotFacts:
    start = slot.start.astimezone(clock.LOCAL_TZ)
    end = slot.end.astimezone(clock.LOCAL_TZ)
    languages = PractitionerLanguage.objects.filter(
        practitioner_id=slot.practitioner_id
    ).values_list("code", flat=True)
    return SlotFacts(
        slot_id=slot.pk,
        start=slot.start,
        appointment_type=slot.appointment_type,
        local_day=start.date(),
        weekday=start.weekday(),
        local_start=start.strftime("%H:%M"),
        local_end=end.strftime("%H:%M") if end.date() == start.date() else "24:00",
        latitude=slot.clinic.latitude,
        longitude=slot.clinic.longitude,
        languages=frozenset(languages),
    )


def within_windows(windows: tuple[tuple[int, str, str], ...], facts: SlotFacts) -> bool:
    """No windows: any time. Otherwise the slot lies wholly inside one window of its local
    weekday (start and end; "HH:MM" strings compare in time order)."""
    if not windows:
        return True
    return any(
        weekday == facts.weekday and start <= facts.local_start and facts.local_end <= end
        for weekday, start, end in windows
    )


def fits(wish: Wish, facts: SlotFacts) -> bool:
    """The request side of FITS (the slot side, free/public/unheld/active, is
    `_unavailable`)."""
    return (
        wish.appointment_type == facts.appointment_type
        and wish.earliest_date <= facts.local_day <= wish.latest_date
        and within_windows(wish.windows, facts)
        and (not wish.language or wish.language in facts.languages)
        and distance_km(wish.latitude, wish.longitude, facts.latitude, facts.longitude)
        <= wish.radius_km
        and (
            wish.date_of_birth is None
            or type_fits(wish.date_of_birth, wish.appointment_type, facts.start)
        )
    )


def _windows(raw: Any) -> tuple[tuple[int, str, str], ...]:
    return tuple((int(w[0]), str(w[1]), str(w[2])) for w in raw or [])


def _wish(request: FinderRequest) -> Wish:
    child = request.appointment_type == AppointmentType.CHILD_0_5
    return Wish(
        request_id=request.pk,
        appointment_type=request.appointment_type,
        earliest_date=request.earliest_date,
        latest_date=request.latest_date,
        windows=_windows(request.time_windows),
        latitude=request.latitude,
        longitude=request.longitude,
        radius_km=request.radius_km,
        language=request.language,
        date_of_birth=request.patient.date_of_birth if child else None,
    )


def _unavailable(slot: Slot, now: datetime) -> tuple[str, str] | None:
    """(outcome, reason) when the slot cannot be given at all right now, else None."""
    if slot.status != SlotStatus.FREE:
        return Outcome.TAKEN, "slot_taken"
    if slot.start <= now:
        return Outcome.NO_REQUEST, "past"
    if not (slot.clinic.is_active and slot.practitioner.is_active):
        return Outcome.NO_REQUEST, "inactive"
    if not is_open_to_public(slot, now):
        return Outcome.NO_REQUEST, "reserved"
    if slot.hold_expires_at is not None and slot.hold_expires_at > now:
        return Outcome.TAKEN, "slot_held"
    return None


def _waiting_requests(now: datetime) -> Any:
    """Open requests that may receive a slot now: before their deadline, no offer pending."""
    pending = Offer.objects.filter(request=OuterRef("pk"), status=OfferStatus.PENDING)
    return FinderRequest.objects.filter(status=RequestStatus.OPEN, deadline__gt=now).filter(
        ~Exists(pending)
    )


# Degrees per km, rounded generously: a box test in SQL must never drop a request whose
# exact distance (checked after, in Python) is within its radius.
_DEG_LAT_PER_KM = 1.05 / 110.0


def box_degrees_per_km(latitude: float) -> tuple[float, float]:
    """(degrees of latitude, degrees of longitude) per km around a clinic at `latitude`,
    for a box that must never be narrower than any request's circle. Longitudes shrink
    toward the pole: the cosine is taken 2° nearer the pole than the clinic (a request is
    at most 200 km, under 1.9°, away)."""
    cos_lat = max(math.cos(math.radians(min(abs(latitude) + 2.0, 89.0))), 0.01)
    return _DEG_LAT_PER_KM, _DEG_LAT_PER_KM / cos_lat


def _near(latitudes: list[float], longitudes: list[float]) -> Q:
    """Requests whose point lies within their own radius of a box around these clinics
    (`radius_km` is a column, so the margin is too; one clinic: a box around it). Without
    it every open request of the type and day is read and measured in Python: with 10,000
    open requests, most of a decision's time. The exact distance is checked after."""
    deg_lat, deg_lon = box_degrees_per_km(max(latitudes, key=abs))
    return Q(
        latitude__gte=min(latitudes) - F("radius_km") * deg_lat,
        latitude__lte=max(latitudes) + F("radius_km") * deg_lat,
        longitude__gte=min(longitudes) - F("radius_km") * deg_lon,
        longitude__lte=max(longitudes) + F("radius_km") * deg_lon,
    )


def eligible_requests(slot: Slot, facts: SlotFacts, now: datetime) -> list[int]:
    """Ids of the requests this slot fits, in serving order (filed_at, id). The database
    narrows by type and day (the queue index); distance, windows, language and age are
    checked here, on a few columns per row."""
    offered_before = Offer.objects.filter(request=OuterRef("pk"), slot_id=slot.pk)
    rows = (
        _waiting_requests(now)
        .filter(
            appointment_type=slot.appointment_type,
            earliest_date__lte=facts.local_day,
            latest_date__gte=facts.local_day,
        )
        .filter(_near([facts.latitude], [facts.longitude]))
        .filter(~Exists(offered_before))
        .order_by("filed_at", "pk")
        .values_list(
            "pk", "latitude", "longitude", "radius_km", "time_windows", "language", "patient_id"
        )
    )
    child = slot.appointment_type == AppointmentType.CHILD_0_5
    candidates = []
    for pk, lat, lon, radius, windows, language, patient_id in rows:
        wish = Wish(
            request_id=pk,
            appointment_type=slot.appointment_type,
            earliest_date=facts.local_day,
            latest_date=facts.local_day,
            windows=_windows(windows),
            latitude=lat,
            longitude=lon,
            radius_km=radius,
            language=language,
            date_of_birth=None,
        )
        if fits(wish, facts):
            candidates.append((pk, patient_id))
    if child and candidates:
        # Dates of birth are encrypted: decrypt only for the few candidates of this type.
        births = dict(
            Patient.objects.filter(pk__in={p for _pk, p in candidates}).values_list(
                "pk", "date_of_birth"
            )
        )
        candidates = [
            (pk, p)
            for pk, p in candidates
            if type_fits(births[p], slot.appointment_type, slot.start)
        ]
    return [pk for pk, _patient in candidates]


# --- Decisions ----------------------------------------------------------------------------


def match_slot(slot_id: int, trigger: str) -> MatchDecision | None:
    """Decide who gets this slot now (one transaction, one MatchDecision); None if the
    slot no longer exists."""
    with transaction.atomic():
        _serialise()
        return _decide(slot_id, trigger, clock.now())


def _record(
    slot: Slot,
    trigger: str,
    now: datetime,
    *,
    eligible: list[int],
    winner_id: int | None,
    outcome: str,
    reason: str,
    refused: list[tuple[int, str]] | None = None,
) -> MatchDecision:
    return MatchDecision.objects.create(
        slot=slot,
        clinic_id=slot.clinic_id,
        slot_start=slot.start,
        slot_public=is_open_to_public(slot, now),
        trigger=trigger,
        decided_at=now,
        eligible=eligible[:ELIGIBLE_STORED],
        eligible_count=len(eligible),
        winner_id=winner_id,
        outcome=outcome,
        reason=reason,
        refused=[[request_id, why] for request_id, why in refused or []][:ELIGIBLE_STORED],
    )


def _decide(slot_id: int, trigger: str, now: datetime) -> MatchDecision | None:
    """Inside the serialised transaction: give the slot to the first eligible request
    that can take it, and record the decision."""
    slot = Slot.objects.select_related("clinic", "practitioner").filter(pk=slot_id).first()
    if slot is None:
        return None
    blocked = _unavailable(slot, now)
    if blocked is not None:
        return _record(
            slot, trigger, now, eligible=[], winner_id=None, outcome=blocked[0], reason=blocked[1]
        )
    facts = slot_facts(slot)
    eligible = eligible_requests(slot, facts, now)
    # [request id, why] for each earlier request that could not take the slot.
    refusals: list[tuple[int, str]] = []
    for request_id in eligible:
        outcome, reason = _give(slot, request_id, now)
        if outcome in (Outcome.OFFERED, Outcome.BOOKED):
            why = "earliest_filed" if not refusals else f"earlier_refused:{refusals[0][1]}"
            return _record(
                slot,
                trigger,
                now,
                eligible=eligible,
                winner_id=request_id,
                outcome=outcome,
                reason=why[:40],
                refused=refusals,
            )
        if outcome == Outcome.TAKEN:
            return _record(
                slot,
                trigger,
                now,
                eligible=eligible,
                winner_id=None,
                outcome=outcome,
                reason=reason,
                refused=refusals,
            )
        refusals.append((request_id, reason))
    if eligible:
        decision = _record(
            slot,
            trigger,
            now,
            eligible=eligible,
            winner_id=None,
            outcome=Outcome.WINNER_REFUSED,
            reason=refusals[0][1][:40],
            refused=refusals,
        )
    else:
        decision = _record(
            slot,
            trigger,
            now,
            eligible=[],
            winner_id=None,
            outcome=Outcome.NO_REQUEST,
            reason="no_fit",
        )
    if trigger in ALERT_TRIGGERS:
        notify_alerts(slot, now)
    return decision


def _card_claimed(patient: Patient, appointment_type: str, now: datetime) -> bool:
    """The patient's health card already holds an upcoming appointment of this type (the
    booking would be refused: don't hold a slot for an offer that cannot be accepted)."""
    if not patient.ramq_blind_index or appointment_type not in settings.ONE_UPCOMING_PER_CARD:
        return False
    return CardClaim.objects.filter(
        ramq_blind_index=patient.ramq_blind_index,
        appointment_type=appointment_type,
        ends_at__gt=now,
    ).exists()


def _give(slot: Slot, request_id: int, now: datetime) -> tuple[str, str]:
    """Try to give the slot to one request: (OFFERED | BOOKED | TAKEN, reason), or
    ("", why it could not take it) to try the next one."""
    # Lock order: the account (booking locks it, and account deletion locks it before
    # its requests), the request row, then its offer, then the slot.
    account_id = FinderRequest.objects.filter(pk=request_id).values_list("account_id", flat=True)
    list(User.objects.select_for_update().filter(pk__in=account_id).values_list("pk", flat=True))
    request = (
        FinderRequest.objects.select_for_update(of=("self",))
        .select_related("account", "patient")
        .filter(pk=request_id, status=RequestStatus.OPEN, deadline__gt=now)
        .first()
    )
    if (
        request is None
        or Offer.objects.filter(request=request, status=OfferStatus.PENDING).exists()
    ):
        return "", "request_changed"
    if not request.account.is_active:
        return "", "account_closed"
    if _card_claimed(request.patient, slot.appointment_type, now):
        return "", "card_claimed"
    if request.mode == Mode.BOOK:
        return _book(slot, request, now)
    return _offer(slot, request, now)


def _book(slot: Slot, request: FinderRequest, now: datetime) -> tuple[str, str]:
    try:
        with transaction.atomic():
            appointment = scheduling.book_for_finder(
                account=request.account, patient=request.patient, slot_id=slot.pk
            )
            _mark_booked(request, appointment, now)
    except SlotUnavailable:
        return Outcome.TAKEN, "slot_taken"
    except Conflict:
        return "", "card_claimed"
    except PermissionDenied:
        return "", "account_closed"
    except ValidationError:
        return "", "patient_not_eligible"
    return Outcome.BOOKED, ""


def _mark_booked(request: FinderRequest, appointment: Appointment, now: datetime) -> None:
    FinderRequest.objects.filter(pk=request.pk, status=RequestStatus.OPEN).update(
        status=RequestStatus.BOOKED, appointment=appointment, closed_at=now
    )
    audit.record(
        "finder.booked",
        actor=request.account,
        role=ENGINE_ROLE,
        subject=audit.Subject(
            object_type="finder_request",
            object_id=str(request.pk),
            patient_id=request.patient_id,
            clinic_id=appointment.slot.clinic_id,
        ),
    )


def _channels(request: FinderRequest) -> list[str]:
    wanted: list[str] = [Channel.EMAIL] if request.notify_by_email else []
    return wanted + ([Channel.SMS] if request.notify_by_sms else [])


def offer_expiry(request: FinderRequest, slot: Slot, now: datetime) -> datetime | None:
    """Until when the slot is held for this request: FINDER_OFFER_MINUTES, never past the
    slot's start or the request's deadline. None: this request cannot be told now, and
    the slot goes to the next one. That is a request reachable by text message only,
    during quiet hours (21:00–08:00): its text would wait until 08:00, and holding the
    slot from the public all night for someone asleep would be unfair to everyone else.
    It keeps its place in line for the slots that open after 08:00."""
    if not request.notify_by_email and after_quiet_hours(now) != now:
        return None
    expires_at = min(
        now + timedelta(minutes=settings.FINDER_OFFER_MINUTES), slot.start, request.deadline
    )
    if now >= expires_at:
        return None
    return expires_at


def _offer(slot: Slot, request: FinderRequest, now: datetime) -> tuple[str, str]:
    expires_at = offer_expiry(request, slot, now)
    if expires_at is None:
        return "", "quiet_hours"
    try:
        with transaction.atomic():
            offer = Offer.objects.create(
                request=request, slot=slot, offered_at=now, expires_at=expires_at
            )
            held = (
                Slot.objects.filter(pk=slot.pk, status=SlotStatus.FREE, start__gt=now)
                .filter(open_to_public(now))
                .filter(Q(hold_expires_at__isnull=True) | Q(hold_expires_at__lte=now))
                .update(hold_owner=None, hold_visitor=offer.holder_key, hold_expires_at=expires_at)
            )
            if held != 1:
                raise SlotUnavailable()
    except SlotUnavailable:
        return Outcome.TAKEN, "slot_taken"
    except IntegrityError:
        return "", "offer_conflict"
    finder_mail.queue_offer(
        request.account,
        offer_id=offer.pk,
        request_id=request.pk,
        slot=slot,
        expires_at=expires_at,
        channels=_channels(request),
    )
    audit.record(
        "finder.offer",
        actor=request.account,
        role=ENGINE_ROLE,
        subject=audit.Subject(
            object_type="finder_offer",
            object_id=str(offer.pk),
            patient_id=request.patient_id,
            clinic_id=slot.clinic_id,
        ),
    )
    return Outcome.OFFERED, ""


# --- Offers answered, withdrawn, expired (called with the request row locked) ------------


def book_offer(request: FinderRequest, offer: Offer, *, now: datetime) -> Appointment:
    """The patient accepts (services.accept_offer, request and offer rows locked): book
    the held slot with the offer's holder key, close the offer and the request."""
    won = Offer.objects.filter(pk=offer.pk, status=OfferStatus.PENDING, expires_at__gt=now).update(
        status=OfferStatus.ACCEPTED, answered_at=now
    )
    if won != 1:
        raise Conflict(_("This offer has expired."), code="offer_expired")
    request = FinderRequest.objects.select_related("account", "patient").get(pk=request.pk)
    appointment = scheduling.book_for_finder(
        account=request.account,
        patient=request.patient,
        slot_id=offer.slot_id,
        holder_key=offer.holder_key,
    )
    _mark_booked(request, appointment, now)
    finder_mail.withdraw(finder_mail.offer_key(offer.pk))
    return appointment


def end_offer(offer: Offer, *, status: str, trigger: str, now: datetime) -> bool:
    """A pending offer ends without a booking (declined, expired, withdrawn): by
    compare-and-set on its status, its hold is released (only if the slot is still held
    by this very offer), its message withdrawn if not sent, and an event hands the slot
    to the next request in line. The request, if still open, is matched again after
    commit. False if the offer was no longer pending."""
    ended = Offer.objects.filter(pk=offer.pk, status=OfferStatus.PENDING).update(
        status=status, answered_at=now if status == OfferStatus.DECLINED else None
    )
    if ended != 1:
        return False
    Slot.objects.filter(pk=offer.slot_id, hold_visitor=offer.holder_key).update(
        **scheduling.NO_HOLD
    )
    finder_mail.withdraw(finder_mail.offer_key(offer.pk))
    SlotEvent.objects.create(slot_id=offer.slot_id, trigger=trigger, created_at=now)
    transaction.on_commit(_enqueue_events, robust=True)
    if status != OfferStatus.WITHDRAWN:
        after_commit_match_request(offer.request_id)
    return True


def withdraw_pending_offer(request: FinderRequest, *, now: datetime) -> None:
    """The request left the queue (cancelled, expired): its pending offer is taken back
    and the slot goes to the next request."""
    offer = Offer.objects.filter(request=request, status=OfferStatus.PENDING).first()
    if offer is not None:
        end_offer(offer, status=OfferStatus.WITHDRAWN, trigger=Trigger.FREED, now=now)


def refund(request: FinderRequest, *, reason: str) -> None:
    """Refund the request's payment in full (billing: at most once per payment) and tell
    the patient (one message per request and channel)."""
    if request.payment is None:
        return
    done = billing.request_refund(request.payment, reason=reason)
    if done is not None:
        queue_refunded(request, done.amount_cents, reason=reason)


def queue_refunded(request: FinderRequest, amount_cents: int, *, reason: str = "cancelled") -> None:
    account = User.objects.get(pk=request.account_id)
    finder_mail.queue_refunded(
        account, request_id=request.pk, amount_cents=amount_cents, reason=reason
    )


# --- After commit: queue the worker -----------------------------------------------------


def _enqueue_events() -> None:
    from rdv.finder.tasks import process_slot_events  # noqa: PLC0415 (tasks import us)

    process_slot_events.enqueue()


def after_commit_match_request(request_id: int) -> None:
    """Once this transaction commits, the worker looks for a slot for the request."""

    def enqueue() -> None:
        from rdv.finder.tasks import match_new_request  # noqa: PLC0415 (tasks import us)

        match_new_request.enqueue(request_id)

    transaction.on_commit(enqueue, robust=True)


# --- A request looks for a slot ---------------------------------------------------------


def match_request(request_id: int, trigger: str = Trigger.REQUEST_FILED) -> MatchDecision | None:
    """A request was filed (or is free again after an offer ended): find the earliest
    fitting free slot and decide it exactly as an event would, so a request filed later
    never jumps the queue (the slot goes to the earliest-filed eligible request, which
    may be another). Repeats while slots go to others; returns the decision that gave
    this request a slot, or None."""
    tried: set[int] = set()
    for _round in range(MAX_ROUNDS):
        now = clock.now()
        request = _waiting_requests(now).select_related("patient").filter(pk=request_id).first()
        if request is None:
            return None
        slot_id = first_fitting_slot(request, now, exclude=tried)
        if slot_id is None:
            return None
        tried.add(slot_id)
        decision = match_slot(slot_id, trigger)
        if decision is not None and decision.winner_id == request_id:
            return decision
    return None


def _search_ranges(request: FinderRequest, now: datetime) -> list[list[tuple[datetime, datetime]]]:
    """Groups of [start_from, start_before) ranges, in time order: one group per local day
    with windows (the earliest fit of the group wins, windows may overlap), or the whole
    date range at once when the request has none."""
    windows = _windows(request.time_windows)
    first, last = clock.local_day_bounds(request.earliest_date, request.latest_date)
    if not windows:
        return [[(max(first, now), last)]]
    groups = []
    day = request.earliest_date
    while day <= request.latest_date:
        group = []
        for weekday, start, end in windows:
            if weekday != day.weekday():
                continue
            begin = _at(day, start)
            finish = _at(day, end)
            if finish > now:
                group.append((max(begin, now), finish))
        if group:
            groups.append(group)
        day += timedelta(days=1)
    return groups


def _at(day: date, hhmm: str) -> datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return datetime.combine(day, datetime.min.time(), tzinfo=clock.LOCAL_TZ).replace(
        hour=hours, minute=minutes
    )


def first_fitting_slot(request: FinderRequest, now: datetime, *, exclude: set[int]) -> int | None:
    """The id of the earliest free slot this request fits (then nearest, then id), through
    the public search (one index scan per nearby clinic), checked against every rule."""
    wish = _wish(request)
    offered = set(Offer.objects.filter(request=request).values_list("slot_id", flat=True))
    skip = exclude | offered
    for group in _search_ranges(request, now):
        found = [
            hit
            for start_from, start_before in group
            if (
                hit := _first_in_range(
                    request,
                    wish=wish,
                    start_from=start_from,
                    start_before=start_before,
                    now=now,
                    skip=skip,
                )
            )
        ]
        if found:
            return min(found)[2]
    return None


def _first_in_range(
    request: FinderRequest,
    *,
    wish: Wish,
    start_from: datetime,
    start_before: datetime,
    now: datetime,
    skip: set[int],
) -> tuple[datetime, float, int] | None:
    place = Place(label=request.place_label, latitude=request.latitude, longitude=request.longitude)
    offset = 0
    while offset <= SEARCH_MAX_OFFSET:
        page = search_availability(
            AvailabilityQuery(
                place=place,
                radius_km=request.radius_km,
                start_from=start_from,
                start_before=start_before,
                appointment_type=request.appointment_type,
                language=request.language or None,
                limit=SEARCH_PAGE,
                offset=offset,
            )
        )
        ids = [hit.slot_id for hit in page.results if hit.slot_id not in skip]
        slots = Slot.objects.select_related("clinic", "practitioner").in_bulk(ids)
        for hit in page.results:
            slot = slots.get(hit.slot_id)
            if slot is None or _unavailable(slot, now) is not None:
                continue
            if fits(wish, slot_facts(slot)):
                return (hit.start, hit.distance_km, hit.slot_id)
        if not page.has_more:
            return None
        offset += SEARCH_PAGE
    return None


# --- Free alerts --------------------------------------------------------------------------


def notify_alerts(slot: Slot, now: datetime) -> int:
    """A slot left free after a decision: every active alert watching its clinic, its
    practitioner or an area around it (and its type, or any) gets one message, at most one
    per FINDER_ALERT_QUIET_MINUTES (compare-and-set on last_notified_at). No hold."""
    quiet_since = now - timedelta(minutes=settings.FINDER_ALERT_QUIET_MINUTES)
    min_lat, max_lat, min_lon, max_lon = bounding_box(
        slot.clinic.latitude, slot.clinic.longitude, settings.SEARCH_MAX_RADIUS_KM
    )
    watching = (
        Q(scope=AlertScope.CLINIC, clinic_id=slot.clinic_id)
        | Q(scope=AlertScope.PRACTITIONER, practitioner_id=slot.practitioner_id)
        | Q(
            scope=AlertScope.AREA,
            latitude__range=(min_lat, max_lat),
            longitude__range=(min_lon, max_lon),
        )
    )
    due = Q(last_notified_at__isnull=True) | Q(last_notified_at__lte=quiet_since)
    alerts = (
        Alert.objects.filter(watching, due, is_active=True, account__is_active=True)
        .filter(Q(appointment_type="") | Q(appointment_type=slot.appointment_type))
        .select_related("account")
        .order_by("pk")
    )
    sent = 0
    for alert in alerts:
        if alert.scope == AlertScope.AREA and distance_km(
            alert.latitude or 0.0,
            alert.longitude or 0.0,
            slot.clinic.latitude,
            slot.clinic.longitude,
        ) > (alert.radius_km or 0):
            continue
        won = Alert.objects.filter(pk=alert.pk).filter(due).update(last_notified_at=now)
        if won:
            account = alert.account
            channels = (
                [Channel.EMAIL] if account.notify_by_email or not account.notify_by_sms else []
            )
            channels += [Channel.SMS] if account.notify_by_sms else []
            sent += finder_mail.queue_alert(
                account, alert_id=alert.pk, slot=slot, channels=channels
            )
    return sent


# --- The worker: events in order, and the periodic sweep ------------------------------


def process_events(*, limit: int = 10_000) -> int:
    """Work through pending slot events in id order (the worker; safe to run in several
    processes at once: each event is claimed inside the serialised decision). Pending
    events of the same slot are taken together, since a decision reads the slot as it is
    now. Returns the number of decisions taken."""
    done = 0
    while done < limit:
        ids = list(
            SlotEvent.objects.filter(processed_at__isnull=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:EVENT_BATCH]
        )
        if not ids:
            break
        wanted = _worth_deciding(ids)
        for pk in ids:
            if pk in wanted:
                done += _process_one(pk)
    return done


def _worth_deciding(event_ids: list[int]) -> set[int]:
    """Of these pending events, those whose slot some open request or active alert could
    want; the others are marked done at once, with no decision recorded. A decision with
    nobody to give the slot to would say nothing, and slot generation publishes tens of
    thousands of slots a night (the demo's first start, about 165,000): deciding each one
    would hold the worker for an hour. The test is generous (type, local day, a box as
    wide as each radius: never narrower than the exact rules), so a slot that any
    request fits, or any alert watches, is always decided."""
    rows = list(
        SlotEvent.objects.filter(pk__in=event_ids, processed_at__isnull=True).values_list(
            "pk",
            "slot__start",
            "slot__appointment_type",
            "slot__clinic_id",
            "slot__practitioner_id",
            "slot__clinic__latitude",
            "slot__clinic__longitude",
        )
    )
    if not rows:
        return set()
    now = clock.now()
    days = [clock.local_date(row[1]) for row in rows]
    # Only the requests that could want one of these slots by type, day and place: for a
    # single freed slot (the hot path) exactly what its decision will read anyway.
    requests = list(
        _waiting_requests(now)
        .filter(
            _near([row[5] for row in rows], [row[6] for row in rows]),
            appointment_type__in={row[2] for row in rows},
            earliest_date__lte=max(days),
            latest_date__gte=min(days),
        )
        .values_list(
            "appointment_type", "earliest_date", "latest_date", "latitude", "longitude", "radius_km"
        )
    )
    alerts = list(
        Alert.objects.filter(is_active=True).values_list(
            "scope",
            "clinic_id",
            "practitioner_id",
            "appointment_type",
            "latitude",
            "longitude",
            "radius_km",
        )
    )
    wanted: set[int] = set()
    for pk, start, kind, clinic_id, practitioner_id, lat, lon in rows:
        day = clock.local_date(start)
        deg_lat, deg_lon = box_degrees_per_km(lat)
        if any(
            r_kind == kind
            and earliest <= day <= latest
            and abs(r_lat - lat) <= radius * deg_lat
            and abs(r_lon - lon) <= radius * deg_lon
            for r_kind, earliest, latest, r_lat, r_lon, radius in requests
        ) or any(
            a_kind in ("", kind)
            and (
                (scope == AlertScope.CLINIC and a_clinic == clinic_id)
                or (scope == AlertScope.PRACTITIONER and a_practitioner == practitioner_id)
                or (
                    scope == AlertScope.AREA
                    and abs((a_lat or 0.0) - lat) <= (a_radius or 0) * deg_lat
                    and abs((a_lon or 0.0) - lon) <= (a_radius or 0) * deg_lon
                )
            )
            for scope, a_clinic, a_practitioner, a_kind, a_lat, a_lon, a_radius in alerts
        ):
            wanted.add(pk)
    unwanted = [row[0] for row in rows if row[0] not in wanted]
    SlotEvent.objects.filter(pk__in=unwanted, processed_at__isnull=True).update(processed_at=now)
    return wanted


def _process_one(event_id: int) -> int:
    try:
        with transaction.atomic():
            _serialise()
            now = clock.now()
            event = SlotEvent.objects.filter(pk=event_id, processed_at__isnull=True).first()
            if event is None:
                return 0  # another worker took it
            SlotEvent.objects.filter(slot_id=event.slot_id, processed_at__isnull=True).update(
                processed_at=now
            )
            _decide(event.slot_id, event.trigger, now)
    except Exception:
        # One event that cannot be decided must not stop the queue behind it: logged,
        # marked done, and the slot is still found by later events or requests.
        logger.exception("finder: slot event %s could not be processed", event_id)
        SlotEvent.objects.filter(pk=event_id, processed_at__isnull=True).update(
            processed_at=clock.now()
        )
        return 0
    return 1


@dataclass(frozen=True)
class SweepResult:
    offers_expired: int
    requests_expired: int
    holds_expired: int
    released: int
    decisions: int


def sweep(*, since: datetime | None = None) -> SweepResult:
    """What time alone changes (the worker, every FINDER_SWEEP_SECONDS): expired offers
    and passed deadlines first (each frees a slot or a refund), then expired holds and
    reserved slots released since `since`, then every pending event."""
    now = clock.now()
    offers = expire_offers(now)
    requests = expire_requests(now)
    holds = clear_expired_holds(now)
    released = emit_released(since or now - timedelta(hours=scheduling.RELEASE_HOURS_MAX), now)
    decisions = process_events()
    return SweepResult(offers, requests, holds, released, decisions)


def expire_offers(now: datetime) -> int:
    """Pending offers past their answer time expire (compare-and-set), and their slot goes
    to the next request in line."""
    ids = list(
        Offer.objects.filter(status=OfferStatus.PENDING, expires_at__lte=now)
        .order_by("expires_at", "pk")
        .values_list("pk", "request_id")
    )
    expired = 0
    for offer_id, request_id in ids:
        with transaction.atomic():
            list(FinderRequest.objects.select_for_update().filter(pk=request_id).values_list("pk"))
            offer = Offer.objects.filter(pk=offer_id, expires_at__lte=now).first()
            if offer is not None and end_offer(
                offer, status=OfferStatus.EXPIRED, trigger=Trigger.OFFER_EXPIRED, now=now
            ):
                expired += 1
    return expired


def expire_requests(now: datetime) -> int:
    """Open requests past their deadline: expired by compare-and-set (so a cancellation
    racing it, or a second sweep, cannot refund twice), their pending offer withdrawn, the
    payment refunded and the patient told."""
    ids = list(
        FinderRequest.objects.filter(status=RequestStatus.OPEN, deadline__lte=now)
        .order_by("deadline", "pk")
        .values_list("pk", flat=True)
    )
    expired = 0
    for request_id in ids:
        with transaction.atomic():
            won = FinderRequest.objects.filter(
                pk=request_id, status=RequestStatus.OPEN, deadline__lte=now
            ).update(status=RequestStatus.EXPIRED, closed_at=now)
            if not won:
                continue
            request = FinderRequest.objects.select_related("payment").get(pk=request_id)
            withdraw_pending_offer(request, now=now)
            refund(request, reason="deadline")
            audit.record(
                "finder.expired",
                actor=None,
                role=ENGINE_ROLE,
                subject=audit.Subject(
                    object_type="finder_request",
                    object_id=str(request_id),
                    patient_id=request.patient_id,
                ),
            )
            expired += 1
    return expired


def clear_expired_holds(now: datetime) -> int:
    """Holds that ran out (a visitor or patient who never confirmed) are cleared from free
    future slots, each by compare-and-set, and the slot is evented HOLD_EXPIRED. Offers'
    holds are left to expire_offers, which knows their request."""
    held = Slot.objects.filter(
        status=SlotStatus.FREE, start__gt=now, hold_expires_at__lte=now
    ).exclude(hold_visitor__startswith="offer:")
    ids = sorted(
        set(held.filter(hold_owner__isnull=False).values_list("pk", flat=True))
        | set(held.filter(hold_visitor__isnull=False).values_list("pk", flat=True))
    )
    cleared = []
    with transaction.atomic():
        for pk in ids:
            if held.filter(pk=pk).update(**scheduling.NO_HOLD):
                cleared.append(pk)
        _event(cleared, Trigger.HOLD_EXPIRED, now)
    return len(cleared)


def emit_released(since: datetime, now: datetime) -> int:
    """Reserved slots whose release time came in (since, now], still free: evented
    RELEASED once (a slot already evented is skipped, so overlapping sweeps are harmless)."""
    evented = SlotEvent.objects.filter(slot=OuterRef("pk"), trigger=Trigger.RELEASED)
    ids = list(
        Slot.objects.filter(
            status=SlotStatus.FREE,
            public_from__gt=since,
            public_from__lte=now,
            start__gt=now,
        )
        .filter(~Exists(evented))
        .order_by("public_from", "pk")
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        _event(ids, Trigger.RELEASED, now)
    return len(ids)


def _event(slot_ids: list[int], trigger: str, now: datetime) -> None:
    SlotEvent.objects.bulk_create(
        [SlotEvent(slot_id=pk, trigger=trigger, created_at=now) for pk in slot_ids]
    )
