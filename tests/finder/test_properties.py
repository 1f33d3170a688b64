"""Property tests of the issue's "Done when": random sequences of what happens around the
finder (requests filed, slots published, cancelled, booked by the public, offers accepted,
declined or left to expire as the clock moves) over two clinics with reserved slots; after
every step and at every decision:

1. no request is passed over: when a slot goes to a request, no request filed earlier was
   eligible for it (eligibility computed by a simple oracle written here, independently of
   the engine), and a slot given to nobody had no eligible request;
2. a slot is never offered to two requests at once, and a slot held by an offer is held by
   exactly that pending offer;
3. no offer or booking is ever made on a slot that was not open to the public at that
   moment (the fixture has reserved slots, some released later, and Marie, whose family
   doctor holds them, files requests).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdv.accounts.models import User
from rdv.clinics.models import Membership, Practitioner, PractitionerLanguage
from rdv.clinics.queries import StaffContext
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.core.geo import resolve_place
from rdv.finder import engine, services
from rdv.finder.models import (
    FinderRequest,
    MatchDecision,
    Mode,
    Offer,
    OfferStatus,
    Outcome,
    RequestStatus,
)
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Slot,
    SlotStatus,
    Visibility,
)
from tests.conftest import NOW, Cast, local, make_slot
from tests.factories import PatientFactory, UserFactory
from tests.finder.conftest import file_request, publish, window

pytestmark = pytest.mark.django_db

TYPES = [AppointmentType.URGENT, AppointmentType.FOLLOW_UP]
PLACES = ["Laval", "Montréal", "Terrebonne"]
DAYS = [date(2026, 11, 23) + timedelta(days=i) for i in range(6)]


# --- The oracle: what "eligible" means, written from the rules, not from the engine ----


def _haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def public_at(slot: Slot, moment: datetime) -> bool:
    return slot.visibility == Visibility.PUBLIC or (
        slot.public_from is not None and slot.public_from <= moment
    )


def oracle_fits(request: FinderRequest, slot: Slot) -> bool:
    start = slot.start.astimezone(clock.LOCAL_TZ)
    end = slot.end.astimezone(clock.LOCAL_TZ)
    if request.appointment_type != slot.appointment_type:
        return False
    if not request.earliest_date <= start.date() <= request.latest_date:
        return False
    if request.time_windows and not any(
        weekday == start.weekday()
        and time.fromisoformat(begin) <= start.time()
        and end.time() <= time.fromisoformat(finish)
        and end.date() == start.date()
        for weekday, begin, finish in request.time_windows
    ):
        return False
    clinic = slot.clinic
    if _haversine(request.latitude, request.longitude, clinic.latitude, clinic.longitude) > (
        request.radius_km
    ):
        return False
    return (
        not request.language
        or PractitionerLanguage.objects.filter(
            practitioner_id=slot.practitioner_id, code=request.language
        ).exists()
    )


def oracle_eligible(request: FinderRequest, slot: Slot, moment: datetime) -> bool:
    if request.status != RequestStatus.OPEN or request.deadline <= moment:
        return False
    if (
        Offer.objects.filter(request=request, status=OfferStatus.PENDING)
        .exclude(slot=slot)
        .exists()
    ):
        return False
    if (
        Offer.objects.filter(request=request, slot=slot)
        .exclude(status=OfferStatus.PENDING)
        .exists()
    ):
        return False
    return oracle_fits(request, slot)


ORIGINAL_RECORD = engine._record


class Watcher:
    """Checks every decision at the moment it is recorded (inside its transaction)."""

    def __init__(self) -> None:
        self.violations: list[str] = []

    def check(self, slot: Slot, kwargs: dict[str, Any], moment: datetime) -> None:
        outcome = kwargs["outcome"]
        winner_id = kwargs["winner_id"]
        fresh = Slot.objects.select_related("clinic").get(pk=slot.pk)
        if outcome in (Outcome.OFFERED, Outcome.BOOKED) and not public_at(fresh, moment):
            self.violations.append(f"slot {slot.pk} given while not public")
        if winner_id is not None:
            winner = FinderRequest.objects.get(pk=winner_id)
            earlier = FinderRequest.objects.filter(
                status=RequestStatus.OPEN, filed_at__isnull=False
            ).exclude(pk=winner_id)
            for other in earlier:
                if (other.filed_at, other.pk) < (winner.filed_at, winner.pk) and oracle_eligible(
                    other, fresh, moment
                ):
                    self.violations.append(
                        f"request {other.pk} passed over by {winner_id} for slot {slot.pk}"
                    )
        if outcome == Outcome.WINNER_REFUSED:
            # Nobody here has a health card or a closed account: nobody may refuse.
            self.violations.append(f"slot {slot.pk} refused: {kwargs['reason']}")
        if outcome == Outcome.NO_REQUEST and kwargs["reason"] == "no_fit":
            for other in FinderRequest.objects.filter(status=RequestStatus.OPEN):
                if oracle_eligible(other, fresh, moment):
                    self.violations.append(f"slot {slot.pk} given to nobody, {other.pk} fitted")


def check_holds(watcher: Watcher) -> None:
    """Property 2, on the database as it is between steps."""
    doubled = (
        Offer.objects.filter(status=OfferStatus.PENDING)
        .values("slot")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    if doubled.exists():
        watcher.violations.append("two pending offers on one slot")
    for offer in Offer.objects.filter(status=OfferStatus.PENDING).select_related("slot"):
        if (
            offer.slot.hold_visitor != offer.holder_key
            or offer.slot.hold_expires_at != offer.expires_at
        ):
            watcher.violations.append(f"offer {offer.pk} does not hold its slot")
    for slot in Slot.objects.filter(hold_visitor__startswith="offer:"):
        offer_id = int(str(slot.hold_visitor).split(":")[1])
        if not Offer.objects.filter(pk=offer_id, slot=slot, status=OfferStatus.PENDING).exists():
            watcher.violations.append(f"slot {slot.pk} held by a non-pending offer")
    for offer in Offer.objects.select_related("slot"):
        if not public_at(offer.slot, offer.offered_at):
            watcher.violations.append(f"offer {offer.pk} on a reserved slot")
    for request in FinderRequest.objects.filter(appointment__isnull=False).select_related(
        "appointment__slot"
    ):
        appointment = request.appointment
        if appointment is not None and not public_at(appointment.slot, appointment.created_at):
            watcher.violations.append(f"request {request.pk} booked a reserved slot")


# --- The operations -------------------------------------------------------------------

file_op = st.tuples(
    st.just("file"),
    st.integers(0, 3),  # who
    st.sampled_from([Mode.OFFER, Mode.OFFER, Mode.BOOK]),
    st.sampled_from([*TYPES, TYPES[0]]),
    st.sampled_from(PLACES),
    st.sampled_from([5, 25, 25]),
    st.integers(0, 2),  # first day
    st.integers(1, 4),  # days more
    st.sampled_from(["none", "none", "morning", "afternoon"]),
    st.sampled_from(["", "", "", "es"]),
)
publish_op = st.tuples(
    st.just("publish"),
    st.integers(0, 2),  # practitioner
    st.integers(0, 4),  # day
    st.integers(9, 16),  # hour
    st.sampled_from([*TYPES, TYPES[0]]),
    st.sampled_from(["public", "public", "reserved", "released_soon"]),
)
other_op = st.tuples(
    st.sampled_from(["cancel", "public_book", "accept", "decline", "wait"]),
    st.integers(0, 50),
    st.sampled_from([5, 16, 120]),
)
operations = st.lists(st.one_of(file_op, file_op, publish_op, other_op), min_size=4, max_size=18)


class World:
    def __init__(self, cast: Cast, people: list[User], stack: contextlib.ExitStack) -> None:
        self.cast = cast
        self.people = people
        self.stack = stack
        self.now = NOW
        self.practitioners: list[Practitioner] = [
            cast.dr_roy,
            cast.nurse_diane,
            cast.montreal_doctor,
        ]

    def move_clock(self, minutes: int) -> None:
        since = self.now
        self.now += timedelta(minutes=minutes)
        self.stack.enter_context(clock.frozen_now(self.now, all_threads=True))
        engine.sweep(since=since)

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        with contextlib.suppress(DomainError):
            getattr(self, f"do_{kind}")(*op[1:])
        engine.process_events()

    def do_file(  # noqa: PLR0917 (one operation's drawn values, in order)
        self,
        who: int,
        mode: str,
        kind: str,
        place: str,
        radius: int,
        first: int,
        more: int,
        when: str,
        language: str,
    ) -> None:
        earliest = DAYS[first]
        latest = earliest + timedelta(days=more)
        windows: tuple[services.TimeWindow, ...] = ()
        if when != "none":
            hours = ("08:00", "12:00") if when == "morning" else ("12:00", "17:00")
            windows = tuple(window(d.weekday(), *hours) for d in DAYS[first : first + more + 1])
        latest = max(latest, (self.now + timedelta(days=1)).date())
        file_request(
            self.people[who],
            mode=mode,
            appointment_type=kind,
            place=place,
            radius_km=radius,
            earliest_date=earliest,
            latest_date=latest,
            deadline=latest,
            time_windows=windows,
            language=language,
        )

    def do_publish(self, who: int, day: int, hour: int, kind: str, visibility: str) -> None:
        practitioner = self.practitioners[who]
        start = local(DAYS[day].year, DAYS[day].month, DAYS[day].day, hour, 0)
        if (
            start <= self.now
            or Slot.objects.filter(practitioner=practitioner, start=start).exists()
        ):
            return
        extra: dict[str, Any] = {"appointment_type": kind}
        if visibility != "public" and practitioner == self.cast.dr_roy:
            extra["visibility"] = Visibility.REGISTERED
            if visibility == "released_soon":
                extra["public_from"] = min(
                    self.now + timedelta(minutes=100), start - timedelta(minutes=1)
                )
        # Reserved slots are evented too (as when one is cancelled): the engine must refuse them.
        publish(make_slot(practitioner, start, **extra))

    def do_cancel(self, pick: int, _minutes: int) -> None:
        booked = list(
            Appointment.objects.filter(status=AppointmentStatus.BOOKED, slot__start__gt=self.now)
            .select_related("slot__clinic")
            .order_by("pk")
        )
        if not booked:
            return
        appointment = booked[pick % len(booked)]
        clinic = appointment.slot.clinic
        user = self.cast.marc if clinic == self.cast.laval else self.cast.karim
        role = Membership.objects.get(user=user, clinic=clinic).role
        scheduling.cancel_for_clinic(
            StaffContext(user=user, clinic=clinic, role=role),
            appointment_id=appointment.pk,
            reason="Practitioner away",
        )

    def do_public_book(self, pick: int, _minutes: int) -> None:
        free = list(Slot.objects.filter(status=SlotStatus.FREE, start__gt=self.now).order_by("pk"))
        if free:
            scheduling.book_appointment(user=self.cast.paul, slot_id=free[pick % len(free)].pk)

    def _pending(self, pick: int) -> Offer | None:
        pending = list(
            Offer.objects.filter(status=OfferStatus.PENDING)
            .select_related("request")
            .order_by("pk")
        )
        return pending[pick % len(pending)] if pending else None

    def do_accept(self, pick: int, _minutes: int) -> None:
        offer = self._pending(pick)
        if offer is not None:
            services.accept_offer(user=offer.request.account, offer_id=offer.pk)

    def do_decline(self, pick: int, _minutes: int) -> None:
        offer = self._pending(pick)
        if offer is not None:
            services.decline_offer(user=offer.request.account, offer_id=offer.pk)

    def do_wait(self, _pick: int, minutes: int) -> None:
        self.move_clock(minutes)


@pytest.fixture
def people(cast: Cast) -> list[User]:
    others = [UserFactory.create() for _ in range(2)]
    for user in others:
        PatientFactory.create(account=user)
    return [cast.marie, cast.paul, *others]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_the_engine_is_fair_exclusive_and_public_only(
    cast: Cast, people: list[User], monkeypatch: pytest.MonkeyPatch, ops: list[tuple[Any, ...]]
) -> None:
    assert resolve_place("Terrebonne") is not None
    watcher = Watcher()
    original = ORIGINAL_RECORD

    def recording(slot: Slot, trigger: str, now: datetime, **kwargs: Any) -> MatchDecision:
        watcher.check(slot, kwargs, now)
        return original(slot, trigger, now, **kwargs)

    monkeypatch.setattr(engine, "_record", recording)
    with contextlib.ExitStack() as stack, _rolled_back():
        world = World(cast, people, stack)
        for op in ops:
            world.run(op)
            check_holds(watcher)
            assert watcher.violations == [], (op, watcher.violations)


@contextlib.contextmanager
def _rolled_back() -> Iterator[None]:
    """Each example starts from the same fixture: its writes are rolled back."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)
