"""The appointment finder's pages (/chercheur/…): Marie files a search, pays with the
built-in test provider, sees the offer and answers it, downloads her receipt, cancels, and
manages free alerts. Bad input is a field error (422) that writes nothing; Paul finds
nothing of hers (404). The engine's own rules are tested in tests/finder."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404  (pdftotext, a fixed command, in tests only)
from datetime import time, timedelta
from typing import Any

import pytest
from django.test import Client

from rdv.accounts.models import User
from rdv.billing import services as billing
from rdv.billing.models import Payment, Refund
from rdv.finder import engine, events, services
from rdv.finder.models import Alert, FinderRequest, Mode, Offer
from rdv.scheduling.models import Appointment
from tests.billing.conftest import FakeStripe, stripe  # noqa: F401  (the FakeStripe fixture)
from tests.conftest import NOW, Cast, local, make_slot

TODAY = NOW.date()


def browser(user: User | None, language: str = "en") -> Client:
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE=language)
    if user is not None:
        client.force_login(user)
    return client


def form_data(cast: Cast, **overrides: Any) -> dict[str, str]:
    data = {
        "patient_id": str(cast.marie_self.pk),
        "mode": "offer",
        "appointment_type": "urgent",
        "near": "Laval",
        "radius_km": "25",
        "earliest_date": TODAY.isoformat(),
        "latest_date": (TODAY + timedelta(days=13)).isoformat(),
        "language": "",
        "deadline": (TODAY + timedelta(days=7)).isoformat(),
        "notify_by_email": "on",
        "window_0_weekday": "1",
        "window_0_start": "08:00",
        "window_0_end": "12:00",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def filed(user: User, *, paid: bool = True, **overrides: Any) -> FinderRequest:
    """A request filed through the service (and paid with the test provider)."""
    spec = services.RequestSpec(
        **{
            "patient_id": None,
            "mode": Mode.OFFER,
            "appointment_type": "urgent",
            "place": "Laval",
            "radius_km": 25,
            "earliest_date": TODAY,
            "latest_date": TODAY + timedelta(days=13),
            "time_windows": (),
            "language": "",
            "deadline": TODAY + timedelta(days=7),
            "notify_by_email": True,
            "notify_by_sms": False,
            **overrides,
        }
    )
    request = services.create_request(user=user, spec=spec)
    if paid and request.payment_id is not None:
        billing.pay_with_test_provider(account=user, payment_id=request.payment_id, succeed=True)
    request.refresh_from_db()
    return request


def offered(cast: Cast, request: FinderRequest) -> Offer:
    """A slot at Laval is published; the worker offers it to the request."""
    slot = make_slot(cast.dr_roy, local(2026, 11, 24, 9))
    events.slots_published([slot.pk])
    engine.process_events()
    offer = Offer.objects.get(request=request, status="pending")
    return offer


def rows() -> tuple[int, int, int]:
    return FinderRequest.objects.count(), Payment.objects.count(), Alert.objects.count()


def test_the_finder_page_shows_the_price_with_taxes_and_the_promise_in_french(
    cast: Cast,
) -> None:
    response = browser(cast.marie, "fr").get("/chercheur/")
    assert response.status_code == 200
    page = response.content.decode()
    for amount in ("18,95\u202f$", "0,95\u202f$", "1,89\u202f$", "21,79\u202f$"):
        assert amount in page
    assert "TPS" in page or "GST" in page  # the lead's .po gives the French words


def test_the_finder_page_in_english_lists_my_searches(cast: Cast) -> None:
    request = filed(cast.marie)
    page = browser(cast.marie).get("/chercheur/").content.decode()
    assert "$21.79" in page
    assert "Our fairness promise" in page
    assert "only gives times that anyone could book" in page
    assert f"/chercheur/demandes/{request.pk}/" in page
    assert "Searching" in page
    assert "Start a new search" in page


def test_a_visitor_is_sent_to_sign_in(db: Any) -> None:
    for url in ("/chercheur/", "/chercheur/nouvelle-demande/", "/chercheur/alertes/"):
        response = browser(None).get(url)
        assert response.status_code == 302
        assert "/compte/connexion/" in response["Location"]


def test_a_new_search_goes_to_the_payment_page(cast: Cast) -> None:
    client = browser(cast.marie)
    page = client.get("/chercheur/nouvelle-demande/")
    assert page.status_code == 200
    assert "Offer it to me first" in page.content.decode()
    response = client.post(
        "/chercheur/nouvelle-demande/", form_data(cast, patient_id=str(cast.lea.pk))
    )
    request = FinderRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/chercheur/demandes/{request.pk}/paiement/"
    assert (request.patient, request.status, request.mode) == (
        cast.lea,
        "awaiting_payment",
        "offer",
    )
    assert request.time_windows == [[1, "08:00", "12:00"]]
    assert request.payment is not None
    assert request.payment.total_cents == 2179


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"near": "Atlantis"}, "near", "Unknown place"),
        (
            {"latest_date": (TODAY - timedelta(days=1)).isoformat()},
            "latest_date",
            "cannot be before the first day",
        ),
        ({"deadline": TODAY.isoformat()}, "deadline", "between tomorrow and"),
        ({"earliest_date": "2026-13-45"}, "earliest_date", "Enter the date as YYYY-MM-DD"),
        ({"window_0_end": None}, "window_0_end", "Give both times of this window."),
        ({"window_0_end": "07:00"}, "window_0_end", "The end must be after the start."),
        (
            {"window_1_start": "10:00", "window_1_end": "11:00"},
            "window_1_weekday",
            "Choose the day",
        ),
        ({"notify_by_email": None}, "notify_by_email", "at least one way to reach you"),
        ({"notify_by_email": None, "notify_by_sms": "on"}, "notify_by_sms", "mobile phone"),
        ({"appointment_type": "child_0_5"}, "appointment_type", "children aged 0 to 5"),
        ({"mode": "steal"}, "mode", "Select a valid choice"),
        (
            {"earliest_date": "9999-12-31", "latest_date": "9999-12-31", "deadline": "9999-12-31"},
            "latest_date",
            "days ahead",
        ),
        ({"patient_id": "999999"}, "patient_id", "Select a valid choice"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(
    cast: Cast, changes: dict[str, Any], field: str, message: str
) -> None:
    before = rows()
    response = browser(cast.marie).post("/chercheur/nouvelle-demande/", form_data(cast, **changes))
    assert response.status_code == 422
    form = response.context["form"]
    assert any(message in error for error in form.errors.get(field, [])), form.errors
    assert message in response.content.decode()
    assert rows() == before


def test_the_form_speaks_french(cast: Cast) -> None:
    response = browser(cast.marie, "fr").post(
        "/chercheur/nouvelle-demande/", form_data(cast, near="Atlantis")
    )
    assert response.status_code == 422
    assert '<html lang="fr-CA">' in response.content.decode()


def test_a_fourth_search_at_once_is_refused_on_the_form(cast: Cast) -> None:
    for _ in range(3):
        filed(cast.marie, paid=False)
    before = rows()
    response = browser(cast.marie).post("/chercheur/nouvelle-demande/", form_data(cast))
    assert response.status_code == 409
    assert "requests in progress" in response.content.decode()
    assert rows() == before


def test_the_test_payment_page_pays_and_the_search_starts(cast: Cast) -> None:
    request = filed(cast.marie, paid=False)
    client = browser(cast.marie)
    page = client.get(f"/chercheur/demandes/{request.pk}/paiement/").content.decode()
    assert "Test payment — no card is charged" in page
    assert "$21.79" in page
    assert "Simulate a declined card" in page
    response = client.post(f"/chercheur/demandes/{request.pk}/paiement/", {"outcome": "pay"})
    assert response["Location"] == f"/chercheur/demandes/{request.pk}/"
    request.refresh_from_db()
    assert request.status == "open"
    assert request.payment is not None
    assert request.payment.status == "succeeded"
    detail = client.get(response["Location"]).content.decode()
    assert "Download the receipt (PDF)" in detail
    assert "Cancel the search" in detail
    assert "you are refunded in full ($21.79)" in detail


def test_a_declined_card_charges_nothing(cast: Cast) -> None:
    request = filed(cast.marie, paid=False)
    client = browser(cast.marie)
    client.post(f"/chercheur/demandes/{request.pk}/paiement/", {"outcome": "decline"})
    request.refresh_from_db()
    assert request.status == "payment_failed"
    assert request.payment is not None
    assert request.payment.status == "failed"
    response = client.post(f"/chercheur/demandes/{request.pk}/paiement/", {"outcome": "pay"})
    assert response.status_code == 302  # already settled: said on the page, nothing changes
    request.refresh_from_db()
    assert request.payment is not None
    assert request.payment.status == "failed"


def test_the_request_page_shows_what_was_searched(cast: Cast) -> None:
    monday = services.TimeWindow(weekday=0, start=time(13), end=time(17))
    request = filed(
        cast.marie, patient_id=cast.marie_self.pk, language="en", time_windows=(monday,)
    )
    page = browser(cast.marie).get(f"/chercheur/demandes/{request.pk}/").content.decode()
    for text in (
        "Searching",
        "Offer it to me first",
        "Within 25 km of Laval",
        "Monday, 13:00–17:00",
        "English",
        "RDV-2026-",
        "Paid",
        "30 November 2026",  # the deadline day chosen (the search runs to its end)
    ):
        assert text in page, text


def test_the_receipt_is_a_pdf_showing_the_total(cast: Cast) -> None:
    request = filed(cast.marie)
    response = browser(cast.marie, "fr").get(f"/chercheur/demandes/{request.pk}/recu.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert "no-store" in response["Cache-Control"]
    if shutil.which("pdftotext"):
        text = subprocess.run(  # nosec B603
            ["pdftotext", "-", "-"],  # noqa: S607
            input=response.content,
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert "21,79" in text


def test_no_receipt_before_payment(cast: Cast) -> None:
    request = filed(cast.marie, paid=False)
    response = browser(cast.marie).get(f"/chercheur/demandes/{request.pk}/recu.pdf")
    assert response.status_code == 404


def test_an_offer_is_shown_with_its_time_left_and_accepted(cast: Cast) -> None:
    request = filed(cast.marie)
    offer = offered(cast, request)
    client = browser(cast.marie)
    page = client.get(f"/chercheur/demandes/{request.pk}/").content.decode()
    assert "A time was found for you" in page
    assert "Accept this time" in page
    assert 'data-countdown="900"' in page  # 15 minutes
    response = client.post(f"/chercheur/offres/{offer.pk}/accepter/", {"request_id": request.pk})
    appointment = Appointment.objects.get(slot=offer.slot)
    assert response["Location"] == f"/rendez-vous/{appointment.pk}/"
    request.refresh_from_db()
    assert (request.status, request.appointment) == ("booked", appointment)
    page = client.get(f"/chercheur/demandes/{request.pk}/").content.decode()
    assert "See the booked appointment" in page
    assert "Cancel the search" not in page


def test_a_declined_offer_is_listed_and_the_search_goes_on(cast: Cast) -> None:
    request = filed(cast.marie)
    offer = offered(cast, request)
    client = browser(cast.marie)
    response = client.post(f"/chercheur/offres/{offer.pk}/refuser/", {"request_id": request.pk})
    assert response["Location"] == f"/chercheur/demandes/{request.pk}/"
    offer.refresh_from_db()
    assert offer.status == "declined"
    page = client.get(response["Location"]).content.decode()
    assert "Declined" in page
    assert "Accept this time" not in page


def test_an_expired_offer_cannot_be_accepted(cast: Cast, frozen_clock: Any) -> None:
    from rdv.core import clock  # noqa: PLC0415

    request = filed(cast.marie)
    offer = offered(cast, request)
    with clock.frozen_now(offer.expires_at + timedelta(seconds=1), all_threads=True):
        response = browser(cast.marie).post(
            f"/chercheur/offres/{offer.pk}/accepter/", {"request_id": request.pk}
        )
    assert response["Location"] == f"/chercheur/demandes/{request.pk}/"
    assert not Appointment.objects.filter(slot=offer.slot).exists()


def test_cancelling_a_paid_search_refunds_it(cast: Cast) -> None:
    request = filed(cast.marie)
    client = browser(cast.marie)
    response = client.post(f"/chercheur/demandes/{request.pk}/annuler/")
    assert response["Location"] == f"/chercheur/demandes/{request.pk}/"
    request.refresh_from_db()
    assert request.status == "cancelled"
    assert Refund.objects.filter(payment=request.payment).count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "Refund" in page
    again = client.post(f"/chercheur/demandes/{request.pk}/annuler/")
    assert again.status_code == 302  # "already cancelled", said on the page
    assert Refund.objects.count() == 1


def test_someone_elses_search_offer_and_alert_are_not_found(cast: Cast) -> None:
    request = filed(cast.marie)
    offer = offered(cast, request)
    alert = services.create_alert(
        user=cast.marie,
        spec=services.AlertSpec(
            scope="clinic",
            clinic_id=cast.laval.pk,
            practitioner_id=None,
            place="",
            radius_km=None,
            appointment_type="",
        ),
    )
    paul = browser(cast.paul)
    for url in (
        f"/chercheur/demandes/{request.pk}/",
        f"/chercheur/demandes/{request.pk}/paiement/",
        f"/chercheur/demandes/{request.pk}/recu.pdf",
    ):
        response = paul.get(url)
        assert response.status_code == 404, url
        assert b"Laval" not in response.content
    for url in (
        f"/chercheur/demandes/{request.pk}/annuler/",
        f"/chercheur/demandes/{request.pk}/paiement/",
        f"/chercheur/offres/{offer.pk}/accepter/",
        f"/chercheur/offres/{offer.pk}/refuser/",
        f"/chercheur/alertes/{alert.pk}/supprimer/",
    ):
        assert paul.post(url, {"outcome": "pay"}).status_code == 404, url
    request.refresh_from_db()
    offer.refresh_from_db()
    assert (request.status, offer.status) == ("open", "pending")
    assert Alert.objects.filter(pk=alert.pk).exists()


def test_alerts_are_added_listed_and_removed(cast: Cast) -> None:
    client = browser(cast.marie)
    page = client.get("/chercheur/alertes/").content.decode()
    assert cast.dr_roy.display_name in page  # her family doctor, to choose from
    response = client.post(
        "/chercheur/alertes/",
        {"scope": "area", "near": "Laval", "radius_km": "10", "appointment_type": "urgent"},
    )
    assert response["Location"] == "/chercheur/alertes/"
    alert = Alert.objects.get()
    assert (alert.scope, alert.radius_km, alert.account) == ("area", 10, cast.marie)
    page = client.get("/chercheur/").content.decode()
    assert "Within 10 km of Laval" in page
    client.post(f"/chercheur/alertes/{alert.pk}/supprimer/")
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"scope": "clinic"}, "clinic_id"),
        ({"scope": "practitioner", "practitioner_id": "999999"}, "practitioner_id"),
        ({"scope": "area", "near": "Atlantis"}, "near"),
        ({"scope": "moon"}, "scope"),
    ],
)
def test_a_bad_alert_is_a_field_error(cast: Cast, data: dict[str, str], field: str) -> None:
    response = browser(cast.marie).post("/chercheur/alertes/", data)
    assert response.status_code == 422
    assert field in response.context["form"].errors
    assert not Alert.objects.exists()


def test_with_stripe_the_payment_page_says_how_payment_completes(
    cast: Cast,
    stripe: FakeStripe,  # noqa: F811  (the imported fixture)
) -> None:
    request = filed(cast.marie, paid=False)
    client = browser(cast.marie)
    page = client.get(f"/chercheur/demandes/{request.pk}/paiement/").content.decode()
    assert "Payment by card with Stripe" in page
    assert "$21.79" in page
    assert "Test payment" not in page
    assert "js.stripe.com" not in page  # no third-party script under our CSP
    response = client.post(f"/chercheur/demandes/{request.pk}/paiement/", {"outcome": "pay"})
    assert response.status_code == 302  # the test card is refused for a Stripe payment
    request.refresh_from_db()
    assert request.payment is not None
    assert request.payment.status == "pending"


def test_when_stripe_is_down_the_search_waits_and_the_payment_page_retries(
    cast: Cast,
    stripe: FakeStripe,  # noqa: F811  (the imported fixture)
) -> None:
    stripe.fail_next(500, "api_error", "Something went wrong")
    request = filed(cast.marie, paid=False)
    assert request.status == "awaiting_payment"
    assert request.payment is not None
    assert request.payment.provider_ref == ""
    client = browser(cast.marie)
    stripe.fail_next(500, "api_error", "Something went wrong")
    down = client.get(f"/chercheur/demandes/{request.pk}/paiement/")
    assert down.status_code == 503
    assert "Payment is unavailable for the moment" in down.content.decode()
    again = client.get(f"/chercheur/demandes/{request.pk}/paiement/")
    assert again.status_code == 200
    request.payment.refresh_from_db()
    assert request.payment.provider_ref.startswith("pi_")
    keys = {call["idempotency_key"] for call in stripe.posts("/v1/payment_intents")}
    assert keys == {request.payment.idempotency_key}  # every try, the same key
