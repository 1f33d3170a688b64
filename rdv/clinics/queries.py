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


def clinic_distances(
    *, latitude: float, longitude: float, radius_km: float, limit: int = MAX_CLINICS_PER_SEARCH
) -> dict[int, float]:
    """{clinic id: distance in km} of active clinics within the radius, nearest first.

    A bounding box in SQL, then the exact distance in Python. Only ids and coordinates are
    read: the search needs the full rows for one page of results, not for every clinic.
    """
    min_lat, max_lat, min_lon, max_lon = bounding_box(latitude, longitude, radius_km)
    candidates = Clinic.objects.filter(
        is_active=True,
        latitude__range=(min_lat, max_lat),
        longitude__range=(min_lon, max_lon),
    ).values_list("pk", "latitude", "longitude")
    nearby = []
    for pk, clinic_lat, clinic_lon in candidates:
        distance = distance_km(latitude, longitude, clinic_lat, clinic_lon)
        if distance <= radius_km:
            nearby.append((distance, pk))
    nearby.sort()
    return {pk: distance for distance, pk in nearby[:limit]}


def clinics_near(
    *, latitude: float, longitude: float, radius_km: float, limit: int = MAX_CLINICS_PER_SEARCH
) -> list[NearbyClinic]:
    """Active clinics within the radius, nearest first."""
    distances = clinic_distances(
        latitude=latitude, longitude=longitude, radius_km=radius_km, limit=limit
    )
    clinics = Clinic.objects.in_bulk(list(distances))
    return [NearbyClinic(clinic=clinics[pk], distance_km=d) for pk, d in distances.items()]
