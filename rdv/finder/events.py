"""The matching engine's triggers, written where slots change (DESIGN.md invariant 5).

rdv.scheduling.services calls these in the transaction that publishes a slot or gives one
back to the public (a cancellation, a move, a released hold); the SlotEvent rows commit or
roll back with that change, and after the commit a task asks the worker to process them
(rdv.finder.engine.process_events). Should queueing the task fail, the periodic sweep
processes them anyway: nothing is lost, and nothing here waits on the engine.

This module imports only models, so scheduling can import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from rdv.core import clock
from rdv.finder.models import SlotEvent, Trigger


def _enqueue_processing() -> None:
    from rdv.finder.tasks import process_slot_events  # noqa: PLC0415 (tasks import the engine)

    process_slot_events.enqueue()


def record(slot_ids: Iterable[int], trigger: str) -> int:
    """One event per slot, in the caller's transaction; processing is queued after commit."""
    now = clock.now()
    events = [SlotEvent(slot_id=pk, trigger=trigger, created_at=now) for pk in slot_ids]
    if not events:
        return 0
    SlotEvent.objects.bulk_create(events)
    transaction.on_commit(_enqueue_processing, robust=True)
    return len(events)


def slots_published(slot_ids: Iterable[int]) -> int:
    """New slots open to the public (slot generation)."""
    return record(slot_ids, Trigger.PUBLISHED)


def slot_freed(slot_id: int) -> int:
    """A booked slot is free again (a cancellation, or its appointment moved away)."""
    return record([slot_id], Trigger.FREED)


def holds_released(slot_ids: Iterable[int]) -> int:
    """Slots someone was holding were let go before their hold expired."""
    return record(slot_ids, Trigger.HOLD_EXPIRED)
