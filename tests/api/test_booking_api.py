"""The JSON API as a client sees it: the demo story, and every kind of "no"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from rdv.core import clock
from rdv.scheduling.models import Appointment, Slot, SlotStatus, Visibility
from tests.conftest import NOW, Api, Cast, local, make_slot


@pytest.fixture
def laval_week(cast: Cast) -> list[Slot]:
    """Free slots this week in Laval and Montréal."""
    slots = [
        make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0) + timedelta(minutes=30 * i))
        for i in range(3)
    ]
    slots.append(make_slot(cast.nurse_diane, local(2026, 11, 24, 13, 0)))
    slots.append(make_slot(cast.montreal_doctor, local(2026, 11, 24, 13, 0)))
    return slots


def test_patient_searches_books_sees_cancels_and_the_slot_is_free_again(
    cast: Cast, laval_week: list[Slot]
) -> None:
    token = Api().post(
        "/auth/token", {"email": "marie@example.test", "password": "correct horse battery"}
    )
    assert token.status_code == 200
    marie = Api()
    marie.headers["HTTP_AUTHORIZATION"] = f"Bearer {token.json()['token']}"

    found = marie.get(
        "/availability", near="Laval", radius_km=25, to=str(clock.local_today() + timedelta(days=7))
    )
    assert found.status_code == 200
    first = found.json()["results"][0]
    assert first["start"] == "2026-11-24T13:00:00-05:00"
    assert first["clinic"]["name"] == "GMF Laval"  # nearer than Montréal at the same time
    assert first["practitioner"]["display_name"] == "Diane Morin"

    booked = marie.post("/appointments", {"slot_id": first["id"], "reason": "Mal de gorge"})
    assert booked.status_code == 201
    appointment = booked.json()
    assert appointment["status"] == "booked"
    assert appointment["changeable_until"] == "2026-11-23T13:00:00-05:00"

    mine = marie.get("/appointments").json()
    assert [a["id"] for a in mine] == [appointment["id"]]
    assert first["id"] not in [
        s["id"] for s in marie.get("/availability", near="Laval").json()["results"]
    ]

    cancelled = marie.post(f"/appointments/{appointment['id']}/cancel", {"reason": "Mieux"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = marie.get("/availability", near="Laval").json()["results"]
    assert first["id"] in [s["id"] for s in again]


def test_results_are_earliest_first_then_nearest(cast: Cast, laval_week: list[Slot]) -> None:
    results = Api().get("/availability", near="Laval", radius_km=50).json()["results"]
    keys = [(r["start"], r["clinic"]["distance_km"]) for r in results]
    assert keys == sorted(keys)
    assert len(results) == 5


def test_search_filters(cast: Cast, laval_week: list[Slot]) -> None:
    anonymous = Api()
    spanish = anonymous.get("/availability", near="Laval", radius_km=50, language="es").json()[
        "results"
    ]
    assert {r["practitioner"]["id"] for r in spanish} == {cast.montreal_doctor.pk}
    near_only = anonymous.get("/availability", near="Laval", radius_km=5).json()["results"]
    assert cast.montreal.pk not in {r["clinic"]["id"] for r in near_only}
    by_latlon = anonymous.get("/availability", near="45.5088,-73.5878", radius_km=1).json()[
        "results"
    ]
    assert {r["clinic"]["id"] for r in by_latlon} == {cast.montreal.pk}
    by_postal_code = anonymous.get("/availability", near="H7N 1A1", radius_km=10).json()
    assert by_postal_code["place"] == "H7N"
    one_day = anonymous.get(
        "/availability", near="Laval", **{"from": "2026-11-24", "to": "2026-11-24"}
    ).json()
    assert {r["start"][:10] for r in one_day["results"]} == {"2026-11-24"}
    urgent = anonymous.get("/availability", near="Laval", type="periodic").json()["results"]
    assert urgent == []


def test_pagination_walks_every_slot_once(cast: Cast, laval_week: list[Slot]) -> None:
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = Api().get("/availability", near="Laval", radius_km=50, limit=2, offset=offset).json()
        seen += [r["id"] for r in page["results"]]
        offset = page["next_offset"]
    assert sorted(seen) == sorted(s.pk for s in laval_week)


def test_reserved_slots_show_only_to_registered_patients(cast: Cast) -> None:
    reserved = make_slot(cast.dr_roy, local(2026, 11, 25, 15, 0), visibility=Visibility.REGISTERED)

    def ids(api: Api) -> list[int]:
        return [r["id"] for r in api.get("/availability", near="Laval").json()["results"]]

    assert reserved.pk not in ids(Api())
    assert reserved.pk not in ids(Api(cast.paul))
    assert reserved.pk in ids(Api(cast.marie))
    mine = (
        Api(cast.marie).get("/availability", near="Laval", family_doctor="true").json()["results"]
    )
    assert {r["practitioner"]["id"] for r in mine} == {cast.dr_roy.pk}


def test_hold_then_book(cast: Cast, laval_week: list[Slot]) -> None:
    marie = Api(cast.marie)
    held = marie.post(f"/slots/{laval_week[0].pk}/hold")
    assert held.status_code == 200
    assert held.json()["expires_at"] == "2026-11-23T08:05:00-05:00"
    refused = Api(cast.paul, language="en").post("/appointments", {"slot_id": laval_week[0].pk})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "slot_held"
    assert marie.post("/appointments", {"slot_id": laval_week[0].pk}).status_code == 201


def test_reschedule(cast: Cast, laval_week: list[Slot]) -> None:
    marie = Api(cast.marie)
    appointment = marie.post("/appointments", {"slot_id": laval_week[0].pk}).json()
    moved = marie.post(
        f"/appointments/{appointment['id']}/reschedule", {"slot_id": laval_week[1].pk}
    )
    assert moved.status_code == 200
    assert moved.json()["slot_id"] == laval_week[1].pk
    assert Slot.objects.get(pk=laval_week[0].pk).status == SlotStatus.FREE


def test_book_for_a_child(cast: Cast, laval_week: list[Slot]) -> None:
    response = Api(cast.marie).post(
        "/appointments", {"slot_id": laval_week[0].pk, "patient_id": cast.lea.pk}
    )
    assert response.status_code == 201
    assert response.json()["patient"] == {"id": cast.lea.pk, "first_name": "Léa"}
    only_lea = Api(cast.marie).get("/appointments", patient_id=cast.lea.pk).json()
    assert len(only_lea) == 1


def test_municipality_autocomplete_ignores_accents_and_case(db: Any) -> None:
    names = [m["name"] for m in Api().get("/municipalities", q="MONTREAL").json()]
    assert names[0] == "Montréal"
    assert next(m["name"] for m in Api().get("/municipalities", q="levis").json()) == "Lévis"
    assert Api().get("/municipalities", q="").json() == []


def test_clinics_near(cast: Cast) -> None:
    clinics = Api().get("/clinics", near="Laval", radius_km=30).json()
    assert [c["name"] for c in clinics] == ["GMF Laval", "CLSC Montréal"]
    assert clinics[0]["distance_km"] == 0.0


def test_openapi_spec_is_served(db: Any) -> None:
    spec = Api().get("/openapi.json").json()
    for path in (
        "/api/v1/availability",
        "/api/v1/appointments",
        "/api/v1/auth/token",
        "/api/v1/slots/{slot_id}/hold",
    ):
        assert path in spec["paths"]


# --- Every kind of "no" -----------------------------------------------------------------

BAD_SEARCHES = [
    ({"near": "Atlantide"}, "unknown_place", "near"),
    ({"near": "Laval", "radius_km": 10000}, "invalid", "radius_km"),
    ({"near": "Laval", "radius_km": -1}, "invalid", "radius_km"),
    ({"near": "Laval", "limit": "abc"}, "invalid", "limit"),
    ({"near": "Laval", "limit": 0}, "invalid", "limit"),
    ({"near": "Laval", "from": "2026-13-01"}, "invalid", "from"),
    ({"near": "Laval", "from": "2026-12-10", "to": "2026-12-01"}, "date_range", "to"),
    ({"near": "Laval", "from": "2026-01-01", "to": "2026-01-05"}, "date_range", "to"),
    ({"near": "Laval", "from": "2026-11-23", "to": "2027-11-23"}, "date_range", "to"),
    ({"near": "Laval", "type": "massage"}, "unknown_type", "type"),
    ({"near": "Laval", "language": "french"}, "invalid", "language"),
    ({"near": "Laval", "family_doctor": "true"}, "sign_in_required", "family_doctor"),
    ({"near": "95,200"}, "unknown_place", "near"),
    ({}, "invalid", "near"),
]


@pytest.mark.parametrize(("params", "code", "field"), BAD_SEARCHES)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_bad_search_answers_422_in_the_right_language(
    cast: Cast, params: dict[str, Any], code: str, field: str, language: str
) -> None:
    response = Api(language=language).get("/availability", **params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["fields"]
    french = language == "fr"
    assert error["message"]
    assert _looks_french(error["message"]) is french, error["message"]


def _looks_french(message: str) -> bool:
    english_markers = (" the ", "Enter", "Unknown", "Some of", "Sign in", "Search at most", "This ")
    return not any(marker in f" {message}" for marker in english_markers)


def test_unknown_ids_answer_404(cast: Cast) -> None:
    marie = Api(cast.marie)
    assert marie.post("/appointments", {"slot_id": 999999}).status_code == 404
    assert marie.post("/slots/999999/hold").status_code == 404
    assert marie.post("/appointments/999999/cancel").status_code == 404
    assert marie.post("/appointments/999999/reschedule", {"slot_id": 1}).status_code == 404
    assert marie.get("/appointments", patient_id=999999).status_code == 404


def test_someone_elses_appointment_is_404_and_untouched(cast: Cast, laval_week: list[Slot]) -> None:
    appointment = Api(cast.marie).post("/appointments", {"slot_id": laval_week[0].pk}).json()
    paul = Api(cast.paul)
    assert paul.post(f"/appointments/{appointment['id']}/cancel").status_code == 404
    assert (
        paul.post(
            f"/appointments/{appointment['id']}/reschedule", {"slot_id": laval_week[1].pk}
        ).status_code
        == 404
    )
    assert Appointment.objects.get().status == "booked"
    assert Slot.objects.get(pk=laval_week[1].pk).status == SlotStatus.FREE


def test_past_slot_is_409(cast: Cast) -> None:
    past = make_slot(cast.dr_roy, NOW - timedelta(hours=2))
    response = Api(cast.marie, language="en").post("/appointments", {"slot_id": past.pk})
    assert response.status_code == 409
    assert response.json()["error"]["message"] == "This time has already passed."
    assert not Appointment.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        '{"slot_id": "abc"}',
        '{"slot_id": -3}',
        "{}",
        "not json",
        "[]",
        '{"slot_id": 1, "reason": "' + "x" * 1001 + '"}',
    ],
)
def test_malformed_booking_is_422_with_no_write(cast: Cast, body: str) -> None:
    response = Api(cast.marie).post("/appointments", raw=body)
    assert response.status_code in (400, 422)
    assert "error" in response.json()
    assert not Appointment.objects.exists()


def test_api_requires_a_valid_token(cast: Cast, laval_week: list[Slot]) -> None:
    anonymous = Api(language="en")
    response = anonymous.post("/appointments", {"slot_id": laval_week[0].pk})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    anonymous.headers["HTTP_AUTHORIZATION"] = "Bearer rdv_forged"
    assert anonymous.get("/appointments").status_code == 401
    assert anonymous.get("/availability", near="Laval").status_code == 401
    assert not Appointment.objects.exists()


def test_expired_token_is_refused(cast: Cast) -> None:
    marie = Api(cast.marie)
    with clock.frozen_now(NOW + timedelta(days=31)):
        assert marie.get("/appointments").status_code == 401


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "marie@example.test", "password": "wrong"},
        {"email": "nobody@example.test", "password": "correct horse battery"},
    ],
)
def test_bad_credentials_give_one_answer(cast: Cast, credentials: dict[str, str]) -> None:
    response = Api(language="en").post("/auth/token", credentials)
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "bad_credentials",
        "message": "Incorrect email or password.",
        "fields": {},
    }


def test_nul_bytes_are_422_not_500(cast: Cast, laval_week: list[Slot]) -> None:
    assert (
        Api().post("/auth/token", {"email": "a\x00b@example.test", "password": "x"}).status_code
        == 422
    )
    marie = Api(cast.marie, language="en")
    response = marie.post("/appointments", {"slot_id": laval_week[0].pk, "reason": "toux\x00"})
    assert response.status_code == 422
    assert (
        response.json()["error"]["fields"]["reason"]
        == "This text contains a character that is not allowed."
    )
    assert not Appointment.objects.exists()


def test_a_malformed_authorization_header_is_refused_everywhere(cast: Cast) -> None:
    token = Api(cast.marie).headers["HTTP_AUTHORIZATION"].split(" ", 1)[1]
    for header in (f"Bearer  {token}", f"Bearer {token} ", f"Token {token}", "Bearer"):
        client = Api()
        client.headers["HTTP_AUTHORIZATION"] = header
        assert (
            client.get("/appointments").status_code
            == client.get("/availability", near="Laval").status_code
        )


def test_staff_without_a_patient_record_can_search(cast: Cast, laval_week: list[Slot]) -> None:
    response = Api(cast.sophie).get("/availability", near="Laval")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 5


def test_the_holder_still_sees_their_held_slot_and_others_do_not(
    cast: Cast, laval_week: list[Slot]
) -> None:
    held = laval_week[0].pk
    assert Api(cast.marie).post(f"/slots/{held}/hold").status_code == 200

    def ids(api: Api) -> list[int]:
        return [r["id"] for r in api.get("/availability", near="Laval").json()["results"]]

    assert held in ids(Api(cast.marie))
    assert held not in ids(Api(cast.paul))
    assert held not in ids(Api())


def test_hold_for_a_dependant_uses_a_query_parameter(cast: Cast) -> None:
    child_slot = make_slot(
        cast.nurse_diane, local(2026, 11, 25, 10, 0), appointment_type="child_0_5"
    )
    marie = Api(cast.marie)
    assert marie.post(f"/slots/{child_slot.pk}/hold").status_code == 422  # Marie is not 0-5
    assert marie.post(f"/slots/{child_slot.pk}/hold?patient_id={cast.lea.pk}").status_code == 200


def test_inactive_practitioners_slots_are_not_offered(cast: Cast, laval_week: list[Slot]) -> None:
    cast.nurse_diane.is_active = False
    cast.nurse_diane.save()
    results = Api().get("/availability", near="Laval", radius_km=50).json()["results"]
    assert cast.nurse_diane.pk not in {r["practitioner"]["id"] for r in results}


def test_listing_appointments_does_not_query_per_appointment(
    cast: Cast, laval_week: list[Slot]
) -> None:
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    marie = Api(cast.marie)
    marie.post("/appointments", {"slot_id": laval_week[0].pk})
    with CaptureQueriesContext(connection) as one:
        assert len(marie.get("/appointments").json()) == 1
    for slot in laval_week[1:3]:
        marie.post("/appointments", {"slot_id": slot.pk, "patient_id": cast.lea.pk})
    with CaptureQueriesContext(connection) as three:
        assert len(marie.get("/appointments").json()) == 3
    assert len(three.captured_queries) == len(one.captured_queries)
