"""Nothing a user sends may produce a 500: fuzz every input of the public and patient API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdv.scheduling.models import Appointment, Slot
from tests.conftest import Api, Cast, local, make_slot

anything = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.dates(min_value=__import__("datetime").date(1, 1, 1)).map(str),
    st.sampled_from(
        ["Laval", "45.5,-73.6", "H7N", "true", "", "0", "-1", "9999-12-31", "0001-01-01"]
    ),
)
edge_dates = st.sampled_from(
    ["9999-12-31", "0001-01-01", "2026-11-23", "2026-02-29", "2028-02-29", "2026-11-22"]
)
search_params = st.fixed_dictionaries(
    {"near": st.sampled_from(["Laval", "45.5,-73.6", "H7N", "Montréal"]) | anything},
    # Mostly plausible values, so that validation of one parameter does not hide the
    # handling of another; `anything` keeps the hostile ones coming.
    optional={
        "radius_km": st.sampled_from(["0.5", "25", "200", "201", "0", "nan"]) | anything,
        "from": edge_dates | anything,
        "to": edge_dates | anything,
        "type": st.sampled_from(["urgent", "child_0_5", "periodic"]) | anything,
        "language": st.sampled_from(["fr", "en", "es", "zz"]) | anything,
        "family_doctor": st.sampled_from(["true", "false"]) | anything,
        "patient_id": st.integers(min_value=-1, max_value=10**20).map(str) | anything,
        "limit": st.integers(min_value=-1, max_value=101).map(str) | anything,
        "offset": st.integers(min_value=-1, max_value=1001).map(str) | anything,
    },
)
fuzz = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz
@given(params=search_params)
def test_availability_never_fails_with_a_server_error(cast: Cast, params: dict[str, str]) -> None:
    for api in (Api(), Api(cast.marie)):
        response = api.get("/availability", **params)
        assert response.status_code < 500, (params, response.content)


@fuzz
@given(
    params=st.dictionaries(
        st.sampled_from(["q", "near", "radius_km", "limit"]), anything, max_size=3
    )
)
def test_places_never_fail_with_a_server_error(cast: Cast, params: dict[str, str]) -> None:
    assert Api().get("/municipalities", **params).status_code < 500
    assert Api().get("/clinics", **params).status_code < 500


json_values: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
bodies = st.one_of(
    st.dictionaries(
        st.sampled_from(["slot_id", "patient_id", "reason"]), json_values, max_size=3
    ).map(json.dumps),
    st.text(max_size=40),
)
path_ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str), st.text(min_size=1, max_size=10)
)


@fuzz
@given(body=bodies, target=path_ids, real=st.booleans())
def test_patient_writes_never_fail_with_a_server_error(
    cast: Cast, body: str, target: str, real: bool
) -> None:
    """Against real slots and appointments too, so requests get past "not found"."""
    slot = (
        make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
        if not Slot.objects.exists()
        else Slot.objects.first()
    )
    assert slot is not None
    marie = Api(cast.marie)
    if real:
        body = body.replace('"slot_id": ', f'"slot_id": {slot.pk}, "x": ', 1)
        target = str(slot.pk)
    safe_target = target.replace("/", "").replace("?", "").replace("#", "") or "1"
    before: dict[str, int] = {"/appointments": Appointment.objects.count()}
    for path in (
        "/appointments",
        f"/slots/{safe_target}/hold",
        f"/appointments/{safe_target}/cancel",
        f"/appointments/{safe_target}/reschedule",
    ):
        response = marie.post(path, raw=body)
        assert response.status_code < 500, (path, body, response.content)
        if response.status_code >= 400:
            assert Appointment.objects.count() == before.get(path, Appointment.objects.count())
        before = {p: Appointment.objects.count() for p in ("/appointments",)}


@pytest.mark.parametrize(
    "params",
    [
        {"from": "9999-12-31"},
        {"to": "9999-12-31"},
        {"from": "9999-12-31", "to": "9999-12-31"},
        {"from": "0001-01-01"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        {"radius_km": "nan"},
        {"radius_km": "inf"},
        {"radius_km": "1e-300"},
    ],
)
def test_extreme_values_are_422_not_500(cast: Cast, params: dict[str, str]) -> None:
    response = Api().get("/availability", near="Laval", **params)
    assert response.status_code in (200, 422), response.content


@pytest.mark.parametrize("huge", [2**63, 10**30])
def test_ids_beyond_the_database_range_are_404_or_422(cast: Cast, huge: int) -> None:
    marie = Api(cast.marie)
    assert marie.post("/appointments", {"slot_id": huge}).status_code in (404, 422)
    assert marie.post(f"/slots/{huge}/hold").status_code in (404, 422)
    assert marie.get("/appointments", patient_id=huge).status_code in (404, 422)
    assert marie.post(f"/appointments/{huge}/cancel").status_code in (404, 422)
    assert marie.post(f"/appointments/{huge}/reschedule", {"slot_id": huge}).status_code in (
        404,
        422,
    )


@fuzz
@given(
    body=st.dictionaries(st.sampled_from(["email", "password"]), json_values, max_size=2).map(
        json.dumps
    )
    | st.text(max_size=40)
)
def test_sign_in_never_fails_with_a_server_error(cast: Cast, body: str) -> None:
    assert Api().post("/auth/token", raw=body).status_code < 500
