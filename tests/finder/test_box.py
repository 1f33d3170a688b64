"""The engine's SQL pre-filter (a box around the clinic, as wide as each request's radius)
must never drop a request whose exact distance is within its radius."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from rdv.core.geo import EARTH_RADIUS_KM, distance_km
from rdv.finder.engine import box_degrees_per_km


def destination(lat: float, lon: float, bearing_deg: float, km: float) -> tuple[float, float]:
    """The point `km` away from (lat, lon) along `bearing_deg` on the sphere."""
    phi1, lambda1, theta = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    delta = km / EARTH_RADIUS_KM
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(theta)
    )
    lambda2 = lambda1 + math.atan2(
        math.sin(theta) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), math.degrees(lambda2)


@given(
    clinic_lat=st.floats(min_value=44.0, max_value=63.0),  # Quebec, with a margin
    clinic_lon=st.floats(min_value=-80.0, max_value=-56.0),
    bearing=st.floats(min_value=0.0, max_value=360.0),
    share=st.floats(min_value=0.0, max_value=1.0),
    radius_km=st.integers(min_value=1, max_value=200),
)
def test_every_request_within_its_radius_is_inside_the_box(
    clinic_lat: float, clinic_lon: float, bearing: float, share: float, radius_km: int
) -> None:
    request_lat, request_lon = destination(clinic_lat, clinic_lon, bearing, share * radius_km)
    assert distance_km(request_lat, request_lon, clinic_lat, clinic_lon) <= radius_km + 1e-6
    deg_lat, deg_lon = box_degrees_per_km(clinic_lat)
    assert abs(request_lat - clinic_lat) <= radius_km * deg_lat
    assert abs(request_lon - clinic_lon) <= radius_km * deg_lon
