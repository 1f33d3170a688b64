"""The matching engine, story by story, with the clock under the test's control."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from rdv.billing.models import Refund
from rdv.core import clock
from rdv.core.errors import Conflict, SlotUnavailable
from rdv.finder import engine, services
from rdv.finder.models import (
    Alert,
    AlertScope,
    FinderRequest,
    MatchDecision,
    Mode,
    OfferStatus,
    Outcome,
    RequestStatus,
    SlotEvent,
    Trigger,
)
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Kind, Message, MessageStatus
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import AppointmentStatus, AppointmentType, Slot, SlotStatus, Visibility
from tests.conftest import NOW, Cast, local, make_slot
from tests.factories import PatientFactory, UserFactory
from tests.finder.conftest import (
    file_request,
    offer_messages,
    pending_offer_of,
    publish,
    window,
)

pytestmark = pytest.mark.django_db


def someone() -> object:
    user = UserFactory.create()
    PatientFactory.create(account=user)
    return user


def test_a_published_slot_is_offered_to_the_earliest_filed_request(cast: Cast) -> None:
    first = file_request(cast.paul)
    with clock.frozen_now(NOW + timedelta(minutes=5), all_threads=True):
        second = file_request(cast.marie)
        slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
        offer = pending_offer_of(first)
        assert offer is not None
        assert offer.slot_id == slot.pk
        assert pending_offer_of(second) is None
        held = Slot.objects.get(pk=slot.pk)
        assert held.hold_visitor == offer.holder_key
        assert held.hold_expires_at == NOW + timedelta(minutes=5 + 15)
        decision = MatchDecision.objects.get(slot=slot, outcome=Outcome.OFFERED)
        assert decision.eligible == [first.pk, second.pk]
        assert decision.winner_id == first.pk
        assert decision.reason == "earliest_filed"
        assert decision.slot_public


def test_the_offer_message_says_where_when_until_when_and_links_to_the_request(
    cast: Cast,
) -> None:
    request = file_request(cast.paul)
    publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    [message] = offer_messages(cast.paul)
    written = json.loads(message.payload)
    assert "GMF Laval" in written["text"]
    assert "2026-11-24 09:00" in written["text"]
    assert "08:15" in written["subject"]  # answer before: 15 minutes from now
    assert f"/chercheur/demandes/{request.pk}/" in written["text"]
    assert message.language == cast.paul.preferred_language
    assert deliver_due() == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.payload == ""  # erased once sent


def test_book_mode_books_at_once_with_the_usual_confirmation(cast: Cast) -> None:
    request = file_request(cast.paul, mode=Mode.BOOK)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    request.refresh_from_db()
    assert request.status == RequestStatus.BOOKED
    assert request.appointment is not None
    assert request.appointment.slot_id == slot.pk
    assert request.appointment.patient == cast.paul_self
    assert Message.objects.filter(kind=Kind.BOOKED, appointment=request.appointment).exists()
    assert MatchDecision.objects.get(slot=slot).outcome == Outcome.BOOKED


def test_filing_finds_the_earliest_fitting_slot_already_free(cast: Cast) -> None:
    make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    early = make_slot(cast.nurse_diane, local(2026, 11, 24, 14, 0))
    make_slot(
        cast.nurse_diane, local(2026, 11, 24, 10, 0), appointment_type=AppointmentType.FOLLOW_UP
    )
    request = file_request(cast.paul)
    offer = pending_offer_of(request)
    assert offer is not None
    assert offer.slot_id == early.pk
    assert MatchDecision.objects.get(slot=early).trigger == Trigger.REQUEST_FILED


def test_windows_radius_and_language_are_respected(cast: Cast) -> None:
    # Tuesday 24: 09:00 is outside the window (13:00-17:00); Montréal is out of 5 km;
    # Diane speaks French only.
    make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0))
    make_slot(cast.montreal_doctor, local(2026, 11, 24, 14, 0))
    make_slot(cast.nurse_diane, local(2026, 11, 24, 16, 45))  # ends 17:15: outside
    fitting = make_slot(cast.nurse_diane, local(2026, 11, 24, 13, 0))
    request = file_request(cast.paul, radius_km=5, time_windows=(window(1, "13:00", "17:00"),))
    offer = pending_offer_of(request)
    assert offer is not None
    assert offer.slot_id == fitting.pk
    spanish = file_request(cast.marie, language="es", radius_km=25)
    assert pending_offer_of(spanish) is not None
    assert pending_offer_of(spanish).slot.practitioner == cast.montreal_doctor  # type: ignore[union-attr]


def test_a_reserved_slot_is_never_offered_even_to_its_doctors_patient(cast: Cast) -> None:
    reserved = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0), visibility=Visibility.REGISTERED)
    request = file_request(cast.marie)  # Marie is Dr Roy's patient
    publish(reserved)
    assert pending_offer_of(request) is None
    assert not MatchDecision.objects.filter(outcome__in=[Outcome.OFFERED, Outcome.BOOKED]).exists()
    assert MatchDecision.objects.get(slot=reserved).reason == "reserved"


def test_a_reserved_slot_released_by_its_rule_is_offered_by_the_sweep(cast: Cast) -> None:
    start = local(2026, 11, 24, 9, 0)
    reserved = make_slot(
        cast.dr_roy,
        start,
        visibility=Visibility.REGISTERED,
        public_from=NOW + timedelta(hours=2),
    )
    request = file_request(cast.paul)
    assert pending_offer_of(request) is None
    engine.sweep(since=NOW - timedelta(minutes=1))
    assert pending_offer_of(request) is None
    later = NOW + timedelta(hours=2, minutes=1)
    with clock.frozen_now(later, all_threads=True):
        engine.sweep(since=NOW)
        offer = pending_offer_of(request)
        assert offer is not None
        assert offer.slot_id == reserved.pk
        decision = MatchDecision.objects.get(slot=reserved, outcome=Outcome.OFFERED)
        assert decision.trigger == Trigger.RELEASED
        assert decision.slot_public
        engine.sweep(since=NOW)  # a second sweep events it no more
        assert SlotEvent.objects.filter(slot=reserved, trigger=Trigger.RELEASED).count() == 1


def test_a_cancellation_frees_the_slot_for_the_next_request(cast: Cast) -> None:
    slot = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    appointment = scheduling.book_appointment(user=cast.marie, slot_id=slot.pk)
    request = file_request(cast.paul)
    assert pending_offer_of(request) is None
    scheduling.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    assert SlotEvent.objects.filter(slot=slot, trigger=Trigger.FREED).exists()
    engine.process_events()
    offer = pending_offer_of(request)
    assert offer is not None
    assert offer.slot_id == slot.pk


def test_a_request_filed_later_never_jumps_the_queue(cast: Cast) -> None:
    """A slot freed but not processed yet: the later request's own search finds it, and
    the decision still gives it to the earlier request."""
    slot = make_slot(cast.nurse_diane, local(2026, 11, 26, 9, 0))
    appointment = scheduling.book_appointment(user=cast.marie, slot_id=slot.pk)
    earlier = file_request(cast.paul)
    scheduling.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    with clock.frozen_now(NOW + timedelta(minutes=1), all_threads=True):
        later = file_request(someone())  # type: ignore[arg-type]
    assert pending_offer_of(later) is None
    offer = pending_offer_of(earlier)
    assert offer is not None
    assert offer.slot_id == slot.pk


def test_an_expired_offer_goes_to_the_next_request(cast: Cast) -> None:
    first = file_request(cast.paul)
    second = file_request(cast.marie)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(first)
    assert offer is not None
    with clock.frozen_now(NOW + timedelta(minutes=14), all_threads=True):
        engine.sweep()
        assert pending_offer_of(first) is not None  # not yet
    with clock.frozen_now(NOW + timedelta(minutes=15), all_threads=True):
        engine.sweep()
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    following = pending_offer_of(second)
    assert following is not None
    assert following.slot_id == slot.pk
    assert Slot.objects.get(pk=slot.pk).hold_visitor == following.holder_key
    assert FinderRequest.objects.get(pk=first.pk).status == RequestStatus.OPEN


def test_accepting_an_expired_offer_is_refused_and_changes_nothing(cast: Cast) -> None:
    request = file_request(cast.paul)
    publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(request)
    assert offer is not None
    with (
        clock.frozen_now(NOW + timedelta(minutes=16), all_threads=True),
        pytest.raises(Conflict) as refused,
    ):
        services.accept_offer(user=cast.paul, offer_id=offer.pk)
    assert refused.value.code == "offer_expired"
    offer.refresh_from_db()
    assert offer.status == OfferStatus.PENDING  # the sweep ends it, not the refusal
    assert FinderRequest.objects.get(pk=request.pk).status == RequestStatus.OPEN


def test_declining_hands_the_slot_to_the_next_and_never_offers_it_again(cast: Cast) -> None:
    first = file_request(cast.paul)
    second = file_request(cast.marie)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(first)
    assert offer is not None
    services.decline_offer(user=cast.paul, offer_id=offer.pk)
    engine.process_events()
    following = pending_offer_of(second)
    assert following is not None
    assert following.slot_id == slot.pk
    services.decline_offer(user=cast.marie, offer_id=following.pk)
    engine.process_events()
    engine.match_request(first.pk)
    assert pending_offer_of(first) is None
    assert Slot.objects.get(pk=slot.pk).hold_expires_at is None


def test_accepting_books_the_held_slot(cast: Cast) -> None:
    request = file_request(cast.paul)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(request)
    assert offer is not None
    with pytest.raises(SlotUnavailable):  # held for the offer: nobody else may book it
        scheduling.book_appointment(user=cast.marie, slot_id=slot.pk)
    appointment = services.accept_offer(user=cast.paul, offer_id=offer.pk)
    assert appointment.slot_id == slot.pk
    assert appointment.status == AppointmentStatus.BOOKED
    request.refresh_from_db()
    assert request.status == RequestStatus.BOOKED
    assert request.appointment == appointment
    assert Slot.objects.get(pk=slot.pk).status == SlotStatus.BOOKED


def test_the_public_wins_over_a_held_then_expired_offer(cast: Cast) -> None:
    request = file_request(cast.paul)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(request)
    assert offer is not None
    with clock.frozen_now(NOW + timedelta(minutes=16), all_threads=True):
        # Before any sweep: the hold has expired, so the public may take the slot at once.
        scheduling.book_appointment(user=cast.marie, slot_id=slot.pk)
        with pytest.raises(Conflict):
            services.accept_offer(user=cast.paul, offer_id=offer.pk)
        engine.sweep()
    offer.refresh_from_db()
    assert offer.status == OfferStatus.EXPIRED
    latest = MatchDecision.objects.filter(slot=slot).latest("pk")
    assert (latest.outcome, latest.trigger) == (Outcome.TAKEN, Trigger.OFFER_EXPIRED)
    assert FinderRequest.objects.get(pk=request.pk).status == RequestStatus.OPEN


def test_deadline_refunds_exactly_once_even_when_swept_twice(cast: Cast) -> None:
    request = file_request(cast.paul)
    after = request.deadline + timedelta(seconds=1)
    with clock.frozen_now(request.deadline - timedelta(seconds=1), all_threads=True):
        engine.sweep()
        assert FinderRequest.objects.get(pk=request.pk).status == RequestStatus.OPEN
    with clock.frozen_now(after, all_threads=True):
        engine.sweep()
        engine.sweep()
        with pytest.raises(Conflict):
            services.cancel_request(user=cast.paul, request_id=request.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.EXPIRED
    refund = Refund.objects.get(payment_id=request.payment_id or 0)
    assert (refund.reason, refund.amount_cents) == ("deadline", 2179)
    [message] = Message.objects.filter(kind=Kind.REFUNDED, recipient=cast.paul)
    assert "21,79" in json.loads(message.payload)["text"]


def test_cancel_then_deadline_refunds_once(cast: Cast) -> None:
    request = file_request(cast.paul)
    services.cancel_request(user=cast.paul, request_id=request.pk)
    with clock.frozen_now(request.deadline + timedelta(minutes=1), all_threads=True):
        assert engine.sweep().requests_expired == 0
    assert Refund.objects.filter(payment_id=request.payment_id or 0).count() == 1
    assert Refund.objects.get(payment_id=request.payment_id or 0).reason == "cancelled"
    assert Message.objects.filter(kind=Kind.REFUNDED).count() == 1


def test_a_deadline_withdraws_the_pending_offer_and_frees_its_slot(cast: Cast) -> None:
    first = file_request(cast.paul, deadline=(NOW + timedelta(days=1)).date())
    second = file_request(cast.marie)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 28, 9, 0)))
    offer = pending_offer_of(first)
    assert offer is not None
    # The offer may not outlive the request: it expires with it at the latest.
    assert offer.expires_at <= first.deadline
    with clock.frozen_now(offer.expires_at - timedelta(seconds=1), all_threads=True):
        services.cancel_request(user=cast.paul, request_id=first.pk)
        engine.process_events()
    offer.refresh_from_db()
    assert offer.status == OfferStatus.WITHDRAWN
    following = pending_offer_of(second)
    assert following is not None
    assert following.slot_id == slot.pk


def test_an_expired_hold_of_a_visitor_is_swept_and_offered(cast: Cast) -> None:
    slot = make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0))
    scheduling.hold_slot(user=cast.marie, slot_id=slot.pk)
    request = file_request(cast.paul)
    assert pending_offer_of(request) is None
    with clock.frozen_now(NOW + timedelta(minutes=6), all_threads=True):
        assert engine.sweep().holds_expired == 1
        offer = pending_offer_of(request)
    assert offer is not None
    assert offer.slot_id == slot.pk


def test_a_card_already_booked_lets_the_next_request_have_the_slot(cast: Cast) -> None:
    from tests.scheduling.test_card_claims import give_card  # noqa: PLC0415

    give_card(cast.paul_self)
    earlier = make_slot(cast.nurse_diane, local(2026, 11, 25, 9, 0))
    scheduling.book_appointment(user=cast.paul, slot_id=earlier.pk)
    first = file_request(cast.paul)
    second = file_request(cast.marie)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    assert pending_offer_of(first) is None
    following = pending_offer_of(second)
    assert following is not None
    assert following.slot_id == slot.pk
    decision = MatchDecision.objects.get(slot=slot)
    assert decision.eligible == [first.pk, second.pk]
    assert decision.reason == "earlier_refused:card_claimed"
    assert decision.refused == [[first.pk, "card_claimed"]]


def test_a_text_only_request_is_not_held_a_slot_overnight(cast: Cast) -> None:
    """At 23:00 a text could not reach the patient before 08:00: the slot is not held
    from the public all night; the next request (by email) gets it, and the text-only
    request keeps its place for the morning."""
    cast.paul_self.phone = "+14505550142"
    cast.paul_self.save(update_fields=["phone"])
    by_text = file_request(cast.paul, notify_by_email=False, notify_by_sms=True)
    by_email = file_request(cast.marie)
    with clock.frozen_now(local(2026, 11, 23, 23, 0), all_threads=True):
        night = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    decision = MatchDecision.objects.get(slot=night)
    assert decision.refused == [[by_text.pk, "quiet_hours"]]
    offer = pending_offer_of(by_email)
    assert offer is not None
    assert offer.slot_id == night.pk
    assert pending_offer_of(by_text) is None
    with clock.frozen_now(local(2026, 11, 24, 8, 0), all_threads=True):
        morning = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 10, 0)))
    offer = pending_offer_of(by_text)
    assert offer is not None
    assert offer.slot_id == morning.pk


def test_a_slot_nobody_could_want_is_set_aside_without_a_decision(cast: Cast) -> None:
    """Nightly generation publishes thousands of slots: those no open request could fit
    (type, day, distance) and no alert watches are marked done with no decision record;
    one a request fits is decided as always."""
    request = file_request(cast.paul)  # urgent, around Laval
    other_type = publish(
        make_slot(
            cast.nurse_diane, local(2026, 11, 24, 9, 0), appointment_type=AppointmentType.PERIODIC
        )
    )
    too_late = publish(make_slot(cast.nurse_diane, local(2026, 12, 20, 9, 0)))
    assert not MatchDecision.objects.filter(slot__in=[other_type, too_late]).exists()
    assert not SlotEvent.objects.filter(processed_at__isnull=True).exists()
    fitting = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 10, 0)))
    assert MatchDecision.objects.get(slot=fitting).winner_id == request.pk
    Alert.objects.create(
        account=cast.marie,
        scope=AlertScope.CLINIC,
        clinic=cast.laval,
        created_at=NOW,
    )
    watched = publish(
        make_slot(
            cast.nurse_diane, local(2026, 11, 24, 11, 0), appointment_type=AppointmentType.PERIODIC
        )
    )
    assert MatchDecision.objects.get(slot=watched).outcome == Outcome.NO_REQUEST
