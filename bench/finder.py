"""The appointment finder at scale (issue: "10,000 open requests, time from a slot freed to
the offer in the outbox, p50 and p99").

Runs in the bench process on the bench database, through the app's own code, after the
HTTP phases: BENCH_FINDER_REQUESTS open requests are bulk-created (varied places, types,
windows, dates and modes, spread over the bench accounts), then BENCH_FINDER_FREES booked
appointments are cancelled one at a time. For each, the clock starts when the
cancellation has committed (its SlotEvent is in the table) and stops when the worker's
event processing (rdv.finder.engine.process_events, exactly what the task runs) has
committed its decision, and the offer message row exists in the outbox when the slot was
offered. Needs Django set up.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from rdv.accounts.models import User
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.core.geo import resolve_place
from rdv.finder import engine
from rdv.finder.models import (
    FinderRequest,
    MatchDecision,
    Mode,
    Offer,
    Outcome,
    RequestStatus,
    SlotEvent,
)
from rdv.notifications.models import Kind, Message
from rdv.patients.models import Patient
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import AppointmentType, Slot, SlotStatus, Visibility

SEED = 20261123
TYPES = [
    AppointmentType.URGENT,
    AppointmentType.PRIORITY,
    AppointmentType.FOLLOW_UP,
    AppointmentType.PERIODIC,
]
FREE_DAYS_AHEAD = 3  # freed slots start this many days ahead: past any cut-off
REQUESTS = int(os.environ.get("BENCH_FINDER_REQUESTS", "10000"))
FREES = int(os.environ.get("BENCH_FINDER_FREES", "200"))


@dataclass
class FinderFigures:
    requests: int = 0
    frees: int = 0
    offered_ms: list[float] = field(default_factory=list)  # freed → offer message written
    other_ms: list[float] = field(default_factory=list)  # freed → decision (no offer)
    outcomes: dict[str, int] = field(default_factory=dict)
    eligible_counts: list[int] = field(default_factory=list)
    decide_seconds: float = 0.0


def create_requests(count: int, cities: list[str], rng: random.Random) -> int:
    """Open, paid-looking requests (no payment row: the engine never reads it), filed one
    second apart so the queue order is the creation order."""
    patients = list(
        Patient.objects.filter(account__isnull=False, relationship=Patient.Relationship.SELF)
        .order_by("pk")
        .values_list("pk", "account_id")
    )
    places = [p for p in (resolve_place(c) for c in cities) if p is not None]
    now = clock.now()
    today = clock.local_today()
    rows = []
    for i in range(count):
        patient_id, account_id = patients[i % len(patients)]
        place = rng.choice(places)
        earliest = today + timedelta(days=rng.randint(0, 3))
        latest = earliest + timedelta(days=rng.randint(3, 20))
        windows = []
        if rng.random() < 0.5:
            for weekday in rng.sample(range(5), rng.randint(1, 3)):
                start = rng.choice([8, 9, 12, 13])
                windows.append([weekday, f"{start:02d}:00", f"{start + 4:02d}:00"])
        rows.append(
            FinderRequest(
                account_id=account_id,
                patient_id=patient_id,
                mode=Mode.OFFER if rng.random() < 0.8 else Mode.BOOK,
                status=RequestStatus.OPEN,
                appointment_type=rng.choice(TYPES),
                place_label=place.label,
                latitude=place.latitude,
                longitude=place.longitude,
                radius_km=rng.choice([10, 25, 50]),
                earliest_date=earliest,
                latest_date=latest,
                time_windows=windows,
                language=rng.choice(["", "", "", "en"]),
                deadline=clock.local_midnight(min(latest, today + timedelta(days=14))),
                created_at=now - timedelta(hours=1),
                filed_at=now - timedelta(seconds=count - i),
            )
        )
    FinderRequest.objects.bulk_create(rows, batch_size=2000)
    return count


def _booked_slots(count: int, rng: random.Random) -> list[tuple[int, User]]:
    """Book `count` public slots of the requests' types, a few days ahead, for bench
    accounts (their cancellations are what the run measures)."""
    first = clock.local_midnight(clock.local_today() + timedelta(days=FREE_DAYS_AHEAD))
    candidates = list(
        Slot.objects.filter(
            status=SlotStatus.FREE,
            visibility=Visibility.PUBLIC,
            start__gte=first,
            start__lt=first + timedelta(days=4),
            appointment_type__in=TYPES,
            hold_expires_at__isnull=True,
        ).values_list("pk", flat=True)[:20000]
    )
    accounts = list(
        User.objects.filter(patients__isnull=False, is_active=True).order_by("pk")[:500]
    )
    rng.shuffle(candidates)
    booked: list[tuple[int, User]] = []
    for slot_id in candidates:
        if len(booked) == count:
            break
        user = accounts[len(booked) % len(accounts)]
        try:
            appointment = scheduling.book_appointment(user=user, slot_id=slot_id)
        except DomainError:  # taken meanwhile, card already booked…: the next slot
            continue
        booked.append((appointment.pk, user))
    return booked


def run(cities: list[str]) -> None:
    """The phase as bench/main.py runs it: measure, then print."""
    print_figures(measure(FREES, REQUESTS, cities))


def measure(frees: int, requests: int, cities: list[str]) -> FinderFigures:
    rng = random.Random(SEED)
    figures = FinderFigures()
    figures.requests = create_requests(requests, cities, rng)
    # The data set's own slots (generated before any request existed) and the earlier
    # phases' holds left events pending: with no request filed then, each would only have
    # decided "no request". Set aside, not measured.
    SlotEvent.objects.filter(processed_at__isnull=True).update(processed_at=clock.now())
    for appointment_id, user in _booked_slots(frees, rng):
        scheduling.cancel_appointment(user=user, appointment_id=appointment_id)
        freed_at = time.perf_counter()
        last_decision = MatchDecision.objects.order_by("-pk").values_list("pk", flat=True).first()
        engine.process_events()
        elapsed_ms = (time.perf_counter() - freed_at) * 1000
        figures.decide_seconds += elapsed_ms / 1000
        figures.frees += 1
        decision = MatchDecision.objects.filter(pk__gt=last_decision or 0).order_by("pk").first()
        outcome = decision.outcome if decision is not None else "none"
        figures.outcomes[outcome] = figures.outcomes.get(outcome, 0) + 1
        if decision is not None:
            figures.eligible_counts.append(decision.eligible_count)
        offer = (
            Offer.objects.filter(slot_id=decision.slot_id or 0).order_by("-pk").first()
            if decision
            else None
        )
        in_outbox = (
            offer is not None
            and outcome == Outcome.OFFERED
            and Message.objects.filter(key__startswith=f"{Kind.FINDER_OFFER}:{offer.pk}:").exists()
        )
        (figures.offered_ms if in_outbox else figures.other_ms).append(elapsed_ms)
    return figures


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def print_figures(figures: FinderFigures) -> None:
    print(
        f"   {figures.requests:,} open requests; {figures.frees} slots freed one by one; "
        f"outcomes {figures.outcomes}"
    )
    if figures.eligible_counts:
        print(
            "   eligible requests per decision: median "
            f"{percentile(figures.eligible_counts, 0.5):.0f}, max {max(figures.eligible_counts)}"
        )
    for label, values in (
        ("freed → offer in outbox", figures.offered_ms),
        ("freed → decision, no offer", figures.other_ms),
    ):
        if values:
            print(
                f"   {label}: {len(values)} × p50 {percentile(values, 0.5):.1f} ms, "
                f"p99 {percentile(values, 0.99):.1f} ms"
            )
    if figures.decide_seconds:
        print(f"   decisions/s (one worker): {figures.frees / figures.decide_seconds:.1f}")
