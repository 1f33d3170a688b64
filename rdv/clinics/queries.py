"""Reads about clinics that several callers need."""

from __future__ import annotations

from dataclasses import dataclass

from rdv.clinics.models import Clinic
from rdv.core.geo import bounding_box, distance_km

MAX_CLINICS_PER_SEARCH = 300


@dataclass(frozen=True)
class NearbyClinic:
    clinic: Clinic
    distance_km: float


def clinics_near(
    *, latitude: float, longitude: float, radius_km: float, limit: int = MAX_CLINICS_PER_SEARCH
) -> list[NearbyClinic]:
    """Active clinics within the radius, nearest first (bounding box in SQL, exact in Python)."""
    min_lat, max_lat, min_lon, max_lon = bounding_box(latitude, longitude, radius_km)
    candidates = Clinic.objects.filter(
        is_active=True,
        latitude__range=(min_lat, max_lat),
        longitude__range=(min_lon, max_lon),
    )
    nearby = []
    for clinic in candidates:
        distance = distance_km(latitude, longitude, clinic.latitude, clinic.longitude)
        if distance <= radius_km:
            nearby.append(NearbyClinic(clinic=clinic, distance_km=distance))
    nearby.sort(key=lambda n: (n.distance_km, n.clinic.pk))
    return nearby[:limit]
