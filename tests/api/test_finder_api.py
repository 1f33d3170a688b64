"""/api/v1/finder: Marie files, pays, answers offers, downloads her receipt, cancels and
manages alerts through the API; Paul reaches nothing of hers (404); bad input is 422 in
the error envelope with nothing written; with Stripe, the answer carries what the client
confirms the PaymentIntent with. The OpenAPI document still builds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rdv.billing import services as billing
from rdv.billing.models import Payment
from rdv.core import clock
from rdv.finder import engine, events
from rdv.finder.models import Alert, FinderRequest, Offer
from rdv.scheduling.models import Appointment
from tests.billing.conftest import FakeStripe, stripe  # noqa: F401  (the FakeStripe fixture)
from tests.conftest import NOW, Api, Cast, local, make_slot

TODAY = NOW.date()


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "mode": "offer",
        "appointment_type": "urgent",
        "place": "Laval",
        "radius_km": 25,
        "earliest_date": TODAY.isoformat(),
        "latest_date": (TODAY + timedelta(days=13)).isoformat(),
        "time_windows": [{"weekday": 1, "start": "08:00", "end": "12:00"}],
        "deadline": (TODAY + timedelta(days=7)).isoformat(),
    }
    data.update(overrides)
    return data


def filed(api: Api, **overrides: Any) -> dict[str, Any]:
    response = api.post("/finder/requests", body(**overrides))
    assert response.status_code == 201, response.content
    created: dict[str, Any] = response.json()
    return created


def paid(cast: Cast, request_id: int) -> None:
    request = FinderRequest.objects.get(pk=request_id)
    assert request.payment_id is not None
    billing.pay_with_test_provider(account=cast.marie, payment_id=request.payment_id, succeed=True)


def offered(cast: Cast) -> Offer:
    slot = make_slot(cast.dr_roy, local(2026, 11, 24, 9))
    events.slots_published([slot.pk])
    engine.process_events()
    return Offer.objects.get(slot=slot, status="pending")


def counts() -> tuple[int, int, int]:
    return FinderRequest.objects.count(), Payment.objects.count(), Alert.objects.count()


def test_a_request_is_filed_waiting_for_payment_with_its_amounts(cast: Cast) -> None:
    created = filed(Api(cast.marie))
    assert created["status"] == "awaiting_payment"
    assert created["patient_id"] == cast.marie_self.pk
    assert created["time_windows"] == [{"weekday": 1, "start": "08:00", "end": "12:00"}]
    assert created["deadline"].startswith(f"{(TODAY + timedelta(days=8)).isoformat()}T00:00:00")
    payment = created["payment"]
    assert (payment["price_cents"], payment["gst_cents"], payment["qst_cents"]) == (1895, 95, 189)
    assert (payment["total_cents"], payment["currency"], payment["provider"]) == (
        2179,
        "CAD",
        "test",
    )
    assert (payment["client_secret"], payment["publishable_key"]) == (None, None)


def test_with_stripe_the_client_gets_the_client_secret_and_publishable_key(
    cast: Cast,
    stripe: FakeStripe,  # noqa: F811  (the imported fixture)
    settings: Any,
) -> None:
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_web"
    payment = filed(Api(cast.marie))["payment"]
    assert payment["provider"] == "stripe"
    assert payment["client_secret"].startswith("pi_")
    assert "_secret_" in payment["client_secret"]
    assert payment["publishable_key"] == "pk_test_web"
    (call,) = [c for c in stripe.received if c["path"] == "/v1/payment_intents"]
    assert call["form"]["amount"] == "2179"


def test_signed_out_is_401(db: Any) -> None:
    anonymous = Api()
    assert anonymous.get("/finder/requests").status_code == 401
    assert anonymous.post("/finder/requests", body()).status_code == 401
    assert anonymous.get("/finder/alerts").status_code == 401


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"place": "Atlantis"}, "place"),
        ({"latest_date": (TODAY - timedelta(days=1)).isoformat()}, "latest_date"),
        ({"deadline": (TODAY + timedelta(days=30)).isoformat()}, "deadline"),
        (
            {"time_windows": [{"weekday": 7, "start": "08:00", "end": "12:00"}]},
            "time_windows.0.weekday",
        ),
        ({"time_windows": [{"weekday": 1, "start": "12:00", "end": "08:00"}]}, "time_windows"),
        (
            {"time_windows": [{"weekday": 1, "start": "10:00+01:00", "end": "11:00"}]},
            "time_windows.0.start",
        ),
        (
            {"time_windows": [{"weekday": 1, "start": "10:00", "end": "11:00:30"}]},
            "time_windows.0.end",
        ),
        ({"mode": "steal"}, "mode"),
        ({"language": "xx"}, "language"),
        ({"radius_km": 0}, "radius_km"),
        ({"notify_by_email": False}, "notify_by_email"),
        ({"patient_id": 2**40}, "patient_id"),
        ({"earliest_date": "demain"}, "earliest_date"),
    ],
)
def test_bad_input_is_422_with_the_field_and_writes_nothing(
    cast: Cast, changes: dict[str, Any], field: str
) -> None:
    before = counts()
    response = Api(cast.marie, language="en").post("/finder/requests", body(**changes))
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert counts() == before


def test_someone_elses_patient_is_404(cast: Cast) -> None:
    before = counts()
    response = Api(cast.marie).post("/finder/requests", body(patient_id=cast.paul_self.pk))
    assert response.status_code == 404
    assert counts() == before


def test_my_requests_and_one_request_and_others_find_nothing(cast: Cast) -> None:
    marie, paul = Api(cast.marie), Api(cast.paul)
    created = filed(marie)
    listed = marie.get("/finder/requests").json()
    assert [r["id"] for r in listed] == [created["id"]]
    assert marie.get(f"/finder/requests/{created['id']}").json()["place"] == "Laval"
    assert paul.get("/finder/requests").json() == []
    for path in (f"/finder/requests/{created['id']}", f"/finder/requests/{created['id']}/receipt"):
        response = paul.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "finder_request_not_found"
    assert paul.post(f"/finder/requests/{created['id']}/cancel").status_code == 404
    assert FinderRequest.objects.get().status == "awaiting_payment"


def test_the_receipt_is_a_pdf_once_paid(cast: Cast) -> None:
    marie = Api(cast.marie)
    created = filed(marie)
    assert marie.get(f"/finder/requests/{created['id']}/receipt").status_code == 404
    paid(cast, created["id"])
    response = marie.get(f"/finder/requests/{created['id']}/receipt")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    after = marie.get(f"/finder/requests/{created['id']}").json()
    assert after["status"] == "open"
    assert after["payment"]["receipt_number"].startswith("RDV-2026-")


def test_an_offer_is_accepted_and_the_request_is_booked(cast: Cast) -> None:
    marie = Api(cast.marie)
    created = filed(marie)
    paid(cast, created["id"])
    offer = offered(cast)
    seen = marie.get(f"/finder/requests/{created['id']}").json()["offers"]
    assert [(o["id"], o["status"], o["clinic_name"]) for o in seen] == [
        (offer.pk, "pending", cast.laval.name)
    ]
    assert Api(cast.paul).post(f"/finder/offers/{offer.pk}/accept").status_code == 404
    response = marie.post(f"/finder/offers/{offer.pk}/accept")
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["status"] == "booked"
    assert result["appointment_id"] == Appointment.objects.get(slot=offer.slot).pk


def test_an_offer_is_declined_and_an_expired_one_is_409(cast: Cast) -> None:
    marie = Api(cast.marie)
    created = filed(marie)
    paid(cast, created["id"])
    offer = offered(cast)
    with clock.frozen_now(offer.expires_at + timedelta(seconds=1), all_threads=True):
        expired = marie.post(f"/finder/offers/{offer.pk}/accept")
    assert expired.status_code == 409
    assert expired.json()["error"]["code"] == "offer_expired"
    response = marie.post(f"/finder/offers/{offer.pk}/decline")
    assert response.status_code == 200
    assert response.json()["offers"][0]["status"] == "declined"
    assert response.json()["status"] == "open"


def test_cancelling_a_paid_request_refunds_it_once(cast: Cast) -> None:
    marie = Api(cast.marie)
    created = filed(marie)
    paid(cast, created["id"])
    response = marie.post(f"/finder/requests/{created['id']}/cancel")
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "cancelled"
    assert result["payment"]["refund_status"] in ("pending", "succeeded")
    again = marie.post(f"/finder/requests/{created['id']}/cancel")
    assert again.status_code == 409


def test_alerts_are_created_listed_and_deleted(cast: Cast) -> None:
    marie, paul = Api(cast.marie), Api(cast.paul)
    response = marie.post("/finder/alerts", {"scope": "clinic", "clinic_id": cast.laval.pk})
    assert response.status_code == 201, response.content
    alert = response.json()
    assert (alert["scope"], alert["clinic_id"]) == ("clinic", cast.laval.pk)
    assert [a["id"] for a in marie.get("/finder/alerts").json()] == [alert["id"]]
    assert paul.get("/finder/alerts").json() == []
    deleted = paul.client.delete(f"/api/v1/finder/alerts/{alert['id']}", **paul.headers)  # type: ignore[arg-type]
    assert deleted.status_code == 404
    deleted = marie.client.delete(f"/api/v1/finder/alerts/{alert['id']}", **marie.headers)  # type: ignore[arg-type]
    assert deleted.status_code == 204
    assert not Alert.objects.exists()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"scope": "clinic"}, "clinic_id"),
        ({"scope": "area", "place": "Atlantis", "radius_km": 10}, "place"),
        ({"scope": "moon"}, "scope"),
        ({"scope": "area", "place": "Laval", "radius_km": 500}, "radius_km"),
    ],
)
def test_a_bad_alert_is_422(cast: Cast, payload: dict[str, Any], field: str) -> None:
    response = Api(cast.marie).post("/finder/alerts", payload)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]
    assert not Alert.objects.exists()


def test_the_openapi_document_describes_the_finder(db: Any) -> None:
    response = Api().get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/finder/requests",
        "/api/v1/finder/requests/{request_id}",
        "/api/v1/finder/requests/{request_id}/cancel",
        "/api/v1/finder/requests/{request_id}/receipt",
        "/api/v1/finder/offers/{offer_id}/accept",
        "/api/v1/finder/offers/{offer_id}/decline",
        "/api/v1/finder/alerts",
        "/api/v1/finder/alerts/{alert_id}",
    ):
        assert path in paths, path
    receipt = paths["/api/v1/finder/requests/{request_id}/receipt"]["get"]["responses"]["200"]
    assert list(receipt["content"]) == ["application/pdf"]
