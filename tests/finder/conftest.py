"""Helpers for the finder's tests: a request as the patient files and pays it, and the
worker's steps run by hand (the task queue is not run in tests: each test says when the
worker acts, which keeps every story deterministic)."""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

from rdv.accounts.models import User
from rdv.billing import services as billing
from rdv.finder import engine, events, services
from rdv.finder.models import FinderRequest, Mode, Offer, OfferStatus
from rdv.notifications.models import Kind, Message
from rdv.scheduling.models import AppointmentType, Slot
from tests.conftest import NOW

TODAY = NOW.date()


def spec(**overrides: Any) -> services.RequestSpec:
    values: dict[str, Any] = {
        "patient_id": None,
        "mode": Mode.OFFER,
        "appointment_type": AppointmentType.URGENT,
        "place": "Laval",
        "radius_km": 25,
        "earliest_date": TODAY,
        "latest_date": TODAY + timedelta(days=13),
        "time_windows": (),
        "language": "",
        "deadline": TODAY + timedelta(days=7),
        "notify_by_email": True,
        "notify_by_sms": False,
    }
    values.update(overrides)
    return services.RequestSpec(**values)


def window(weekday: int, start: str, end: str) -> services.TimeWindow:
    return services.TimeWindow(
        weekday=weekday, start=time.fromisoformat(start), end=time.fromisoformat(end)
    )


def file_request(user: User, **overrides: Any) -> FinderRequest:
    """Created, paid with the test provider, then matched as the worker would at once."""
    request = services.create_request(user=user, spec=spec(**overrides))
    if request.payment_id is None:
        raise AssertionError("a request always has a payment")
    billing.pay_with_test_provider(account=user, payment_id=request.payment_id, succeed=True)
    engine.match_request(request.pk)
    request.refresh_from_db()
    return request


def publish(slot: Slot) -> Slot:
    """What slot generation does for a new public slot: an event, then the worker."""
    events.slots_published([slot.pk])
    engine.process_events()
    return slot


def pending_offer_of(request: FinderRequest) -> Offer | None:
    return Offer.objects.filter(request=request, status=OfferStatus.PENDING).first()


def messages(kind: str, user: User | None = None) -> list[Message]:
    found = Message.objects.filter(kind=kind).order_by("pk")
    if user is not None:
        found = found.filter(recipient=user)
    return list(found)


def offer_messages(user: User) -> list[Message]:
    return messages(Kind.FINDER_OFFER, user)


def day(offset: int) -> date:
    return TODAY + timedelta(days=offset)
