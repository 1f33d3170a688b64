"""Races with real threads, one database connection each, on PostgreSQL: the engine never
waits for the public and never beats it by cheating; decisions stay one at a time."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from rdv.core.errors import SlotUnavailable
from rdv.finder import engine, events
from rdv.finder.models import MatchDecision, Offer, OfferStatus, Outcome, SlotEvent, Trigger
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, Slot
from tests.conftest import Cast, local, make_slot, on_postgres
from tests.finder.conftest import file_request, pending_offer_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if not on_postgres():
        pytest.skip("real concurrent transactions need PostgreSQL")


def together(*attempts: Callable[[], object]) -> list[BaseException]:
    """Start the attempts at the same instant; return what they raised, if anything."""
    barrier = threading.Barrier(len(attempts))
    raised: list[BaseException] = []
    lock = threading.Lock()

    def run(attempt: Callable[[], object]) -> None:
        barrier.wait()
        try:
            attempt()
        except BaseException as exc:  # collected for the test to look at
            with lock:
                raised.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return raised


@pytest.mark.parametrize("rounds", range(8))
def test_a_public_booking_and_the_engine_racing_for_a_slot_have_one_winner(
    cast: Cast, rounds: int
) -> None:
    request = file_request(cast.paul)
    slot = make_slot(cast.nurse_diane, local(2026, 11, 24, 9 + rounds % 4, 0))
    events.slots_published([slot.pk])  # the event is pending: the worker and Marie race

    raised = together(
        lambda: scheduling.book_appointment(user=cast.marie, slot_id=slot.pk),
        engine.process_events,
    )
    assert all(isinstance(exc, SlotUnavailable) for exc in raised), raised
    offer = pending_offer_of(request)
    booked = Appointment.objects.filter(slot=slot).exists()
    assert booked != (offer is not None)  # exactly one of them has the slot
    decision = MatchDecision.objects.get(slot=slot)
    if booked:
        assert decision.outcome == Outcome.TAKEN
        assert len(raised) == 0
    else:
        assert decision.outcome == Outcome.OFFERED
        assert Slot.objects.get(pk=slot.pk).hold_visitor == offer.holder_key  # type: ignore[union-attr]
        assert len(raised) == 1


def test_two_workers_processing_events_never_offer_one_slot_twice(cast: Cast) -> None:
    requests = [file_request(cast.paul), file_request(cast.marie)]
    slots = [make_slot(cast.nurse_diane, local(2026, 11, 24, 9 + i, 0)) for i in range(3)]
    # Each slot evented twice over, as a cancellation and a released hold might.
    events.slots_published([s.pk for s in slots])
    events.holds_released([s.pk for s in slots])

    raised = together(engine.process_events, engine.process_events, engine.process_events)
    assert raised == []
    assert not SlotEvent.objects.filter(processed_at__isnull=True).exists()
    pending = Offer.objects.filter(status=OfferStatus.PENDING)
    assert pending.count() == 2
    assert len({o.slot_id for o in pending}) == 2
    assert {o.request_id for o in pending} == {r.pk for r in requests}
    given = MatchDecision.objects.filter(outcome=Outcome.OFFERED)
    assert given.count() == 2
    assert MatchDecision.objects.filter(trigger=Trigger.PUBLISHED).count() == 3
