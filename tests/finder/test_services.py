"""Filing, paying, cancelling and the alerts: the contract the pages and the API use."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from rdv.accounts.privacy import delete_account
from rdv.billing import services as billing
from rdv.billing.models import Payment, PaymentStatus, Refund
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from rdv.finder import engine, queries, services
from rdv.finder.models import Alert, AlertScope, FinderRequest, Offer, OfferStatus, RequestStatus
from rdv.notifications.models import Kind, Message, MessageStatus
from rdv.patients.services import remove_dependant
from rdv.scheduling.models import AppointmentType, Slot
from tests.conftest import NOW, Cast, local, make_slot
from tests.finder.conftest import TODAY, day, file_request, pending_offer_of, publish, spec, window

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"place": "Atlantis"}, "place", "unknown_place"),
        ({"radius_km": 0}, "radius_km", "radius"),
        ({"radius_km": 201}, "radius_km", "radius"),
        ({"earliest_date": TODAY - timedelta(days=1)}, "earliest_date", "date_past"),
        ({"latest_date": TODAY - timedelta(days=1)}, "latest_date", "date_range"),
        ({"latest_date": TODAY + timedelta(days=120)}, "latest_date", "date_range"),
        ({"deadline": TODAY}, "deadline", "deadline_range"),
        ({"deadline": TODAY + timedelta(days=61)}, "deadline", "deadline_range"),
        ({"latest_date": day(3), "deadline": day(4)}, "deadline", "deadline_after_latest"),
        ({"time_windows": (window(1, "12:00", "09:00"),)}, "time_windows", "window_order"),
        ({"time_windows": (window(7, "09:00", "12:00"),)}, "time_windows", "weekday"),
        (
            {"time_windows": tuple(window(1, "09:00", "10:00") for _ in range(15))},
            "time_windows",
            "too_many_windows",
        ),
        ({"language": "xx"}, "language", "language"),
        ({"mode": "maybe"}, "mode", "mode"),
        ({"appointment_type": "spa"}, "appointment_type", "unknown_type"),
        (
            {"appointment_type": AppointmentType.CHILD_0_5},
            "appointment_type",
            "patient_not_eligible",
        ),
        ({"notify_by_email": False, "notify_by_sms": False}, "notify_by_email", "no_channel"),
        ({"notify_by_sms": True}, "notify_by_sms", "no_phone"),
    ],
)
def test_a_bad_request_is_refused_with_its_field_and_nothing_written(
    cast: Cast, overrides: dict[str, Any], field: str, code: str
) -> None:
    cast.paul_self.phone = ""
    cast.paul_self.save()
    with pytest.raises(ValidationError) as refused:
        services.create_request(user=cast.paul, spec=spec(**overrides))
    assert (refused.value.field, refused.value.code) == (field, code)
    assert not FinderRequest.objects.exists()
    assert not Payment.objects.exists()


def test_a_child_request_fits_a_young_child(cast: Cast) -> None:
    request = services.create_request(
        user=cast.marie,
        spec=spec(patient_id=cast.lea.pk, appointment_type=AppointmentType.CHILD_0_5),
    )
    assert request.patient == cast.lea


def test_someone_elses_patient_is_not_found(cast: Cast) -> None:
    with pytest.raises(NotFound):
        services.create_request(user=cast.paul, spec=spec(patient_id=cast.lea.pk))


def test_an_unconfirmed_email_cannot_file(cast: Cast) -> None:
    cast.paul.email_verified_at = None
    cast.paul.save()
    with pytest.raises(PermissionDenied):
        services.create_request(user=cast.paul, spec=spec())


def test_a_request_waits_for_payment_at_the_price_with_taxes(cast: Cast) -> None:
    request = services.create_request(user=cast.paul, spec=spec())
    assert request.status == RequestStatus.AWAITING_PAYMENT
    assert request.filed_at is None
    assert request.payment is not None
    assert (request.payment.price_cents, request.payment.total_cents) == (1895, 2179)
    assert request.payment.provider_ref  # created at the (test) provider
    # The deadline is the end of its local day.
    assert request.deadline == local(2026, 11, 31 - 1, 0, 0) + timedelta(days=1)
    assert request.place_label == "Laval"


def test_at_most_three_requests_in_progress_per_account(cast: Cast) -> None:
    for _ in range(3):
        services.create_request(user=cast.paul, spec=spec())
    with pytest.raises(Conflict) as refused:
        services.create_request(user=cast.paul, spec=spec())
    assert refused.value.code == "too_many_requests"
    assert FinderRequest.objects.count() == 3


def test_a_request_whose_payment_failed_still_counts(cast: Cast) -> None:
    """Its payment can still succeed later (and open it): it counts until cancelled."""
    failed = services.create_request(user=cast.paul, spec=spec())
    billing.pay_with_test_provider(
        account=cast.paul, payment_id=failed.payment_id or 0, succeed=False
    )
    for _ in range(2):
        services.create_request(user=cast.paul, spec=spec())
    with pytest.raises(Conflict):
        services.create_request(user=cast.paul, spec=spec())
    services.cancel_request(user=cast.paul, request_id=failed.pk)
    services.create_request(user=cast.paul, spec=spec())


def test_payment_opens_the_request_in_the_queue(cast: Cast) -> None:
    request = services.create_request(user=cast.paul, spec=spec())
    with clock.frozen_now(NOW + timedelta(minutes=3), all_threads=True):
        billing.pay_with_test_provider(
            account=cast.paul, payment_id=request.payment_id or 0, succeed=True
        )
    request.refresh_from_db()
    assert request.status == RequestStatus.OPEN
    assert request.filed_at == NOW + timedelta(minutes=3)


def test_a_failed_payment_shows_on_the_request(cast: Cast) -> None:
    request = services.create_request(user=cast.paul, spec=spec())
    billing.pay_with_test_provider(
        account=cast.paul, payment_id=request.payment_id or 0, succeed=False
    )
    request.refresh_from_db()
    assert request.status == RequestStatus.PAYMENT_FAILED


def test_cancelling_before_payment_cancels_the_payment(cast: Cast) -> None:
    request = services.create_request(user=cast.paul, spec=spec())
    services.cancel_request(user=cast.paul, request_id=request.pk)
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert Payment.objects.get(pk=request.payment_id or 0).status == PaymentStatus.CANCELLED
    assert not Refund.objects.exists()


def test_a_cancelled_request_paid_late_is_refunded_at_once(cast: Cast) -> None:
    request = services.create_request(user=cast.paul, spec=spec())
    services.cancel_request(user=cast.paul, request_id=request.pk)
    payment = Payment.objects.get(pk=request.payment_id or 0)
    billing.payment_succeeded(provider=payment.provider, provider_ref=payment.provider_ref)
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED
    assert Refund.objects.get(payment=payment).amount_cents == 2179


def test_cancelling_an_open_request_refunds_it_and_tells_the_patient(cast: Cast) -> None:
    request = file_request(cast.paul)
    services.cancel_request(user=cast.paul, request_id=request.pk)
    assert Refund.objects.get(payment_id=request.payment_id or 0).reason == "cancelled"
    [message] = Message.objects.filter(kind=Kind.REFUNDED)
    assert message.recipient == cast.paul
    assert "21,79" in json.loads(message.payload)["text"]
    with pytest.raises(Conflict):
        services.cancel_request(user=cast.paul, request_id=request.pk)
    assert Refund.objects.count() == 1


def test_someone_elses_request_and_offer_are_not_found(cast: Cast) -> None:
    request = file_request(cast.paul)
    publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(request)
    assert offer is not None
    with pytest.raises(NotFound):
        services.cancel_request(user=cast.marie, request_id=request.pk)
    with pytest.raises(NotFound):
        services.accept_offer(user=cast.marie, offer_id=offer.pk)
    with pytest.raises(NotFound):
        services.decline_offer(user=cast.marie, offer_id=offer.pk)
    with pytest.raises(NotFound):
        queries.request_for_user(cast.marie, request.pk)
    assert pending_offer_of(request) == offer


def test_queries_show_what_was_searched_and_offered(cast: Cast) -> None:
    request = file_request(cast.paul)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    assert list(queries.requests_for_user(cast.paul)) == [request]
    assert not queries.requests_for_user(cast.marie).exists()
    offer = queries.pending_offer(request)
    assert offer is not None
    assert offer.slot == slot
    services.decline_offer(user=cast.paul, offer_id=offer.pk)
    assert queries.pending_offer(request) is None
    [declined] = queries.offers_for(request)
    assert declined.status == OfferStatus.DECLINED


def test_cancelling_withdraws_the_offer_and_releases_the_slot(cast: Cast) -> None:
    request = file_request(cast.paul)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(request)
    assert offer is not None
    services.cancel_request(user=cast.paul, request_id=request.pk)
    assert Offer.objects.get(pk=offer.pk).status == OfferStatus.WITHDRAWN
    assert Slot.objects.get(pk=slot.pk).hold_visitor is None


def test_alerts_tell_of_a_freed_slot_once_per_quiet_period(cast: Cast) -> None:
    alert = services.create_alert(
        user=cast.marie,
        spec=services.AlertSpec(
            scope=AlertScope.CLINIC,
            clinic_id=cast.laval.pk,
            practitioner_id=None,
            place="",
            radius_km=None,
            appointment_type="",
        ),
    )
    area = services.create_alert(
        user=cast.paul,
        spec=services.AlertSpec(
            scope=AlertScope.AREA,
            clinic_id=None,
            practitioner_id=None,
            place="Québec",
            radius_km=20,
            appointment_type="",
        ),
    )
    publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 10, 0)))
    [message] = Message.objects.filter(kind=Kind.FINDER_ALERT)
    assert message.recipient == cast.marie
    assert "GMF Laval" in json.loads(message.payload)["text"]
    assert not Message.objects.filter(kind=Kind.FINDER_ALERT, recipient=cast.paul).exists()
    with clock.frozen_now(NOW + timedelta(minutes=61), all_threads=True):
        publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 11, 0)))
    assert Message.objects.filter(kind=Kind.FINDER_ALERT).count() == 2
    services.remove_alert(user=cast.marie, alert_id=alert.pk)
    assert not Alert.objects.filter(pk=alert.pk).exists()
    with pytest.raises(NotFound):
        services.remove_alert(user=cast.marie, alert_id=area.pk)


def test_an_alert_is_checked(cast: Cast) -> None:
    with pytest.raises(ValidationError) as refused:
        services.create_alert(
            user=cast.marie,
            spec=services.AlertSpec(
                scope=AlertScope.AREA,
                clinic_id=None,
                practitioner_id=None,
                place="Laval",
                radius_km=500,
                appointment_type="",
            ),
        )
    assert refused.value.field == "radius_km"
    assert not Alert.objects.exists()
    engine.sweep()  # nothing to do is fine


def test_deleting_the_account_cancels_its_requests_and_refunds_the_paid_one(cast: Cast) -> None:
    paid = file_request(cast.paul)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    offer = pending_offer_of(paid)
    assert offer is not None
    unpaid = services.create_request(user=cast.paul, spec=spec(place="Montréal"))

    delete_account(cast.paul, "correct horse battery")

    refund = Refund.objects.get(payment_id=paid.payment_id or 0)
    assert (refund.reason, refund.amount_cents) == ("account_closed", 2179)
    assert Payment.objects.get(pk=unpaid.payment_id or 0).status == PaymentStatus.CANCELLED
    assert Slot.objects.get(pk=slot.pk).hold_visitor is None
    # The deleted account is sent nothing, the refund notice included.
    assert not Message.objects.filter(
        kind=Kind.REFUNDED, status__in=[MessageStatus.PENDING, MessageStatus.SENDING]
    ).exists()
    assert Refund.objects.count() == 1


def test_removing_a_dependant_cancels_their_requests_and_refunds(cast: Cast) -> None:
    request = file_request(cast.marie, patient_id=cast.lea.pk)
    slot = publish(make_slot(cast.nurse_diane, local(2026, 11, 24, 9, 0)))
    assert pending_offer_of(request) is not None
    remove_dependant(user=cast.marie, patient=cast.lea)
    refund = Refund.objects.get(payment_id=request.payment_id or 0)
    assert (refund.reason, refund.amount_cents) == ("patient_removed", 2179)
    assert Slot.objects.get(pk=slot.pk).hold_visitor is None
    assert not FinderRequest.objects.filter(pk=request.pk).exists()  # Léa was never seen


def test_money_arriving_for_a_request_that_is_gone_is_refunded(cast: Cast) -> None:
    """The account was deleted while the payment was being confirmed: the request went
    with the account's patients; the late success is refunded, not kept."""
    request = services.create_request(user=cast.paul, spec=spec())
    payment = Payment.objects.get(pk=request.payment_id or 0)
    delete_account(cast.paul, "correct horse battery")
    assert not FinderRequest.objects.filter(pk=request.pk).exists()
    billing.payment_succeeded(provider=payment.provider, provider_ref=payment.provider_ref)
    assert Refund.objects.get(payment=payment).reason == "no_request"
