"""Reads about clinics that several callers need."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.clinics.models import Clinic, Membership
from rdv.core.errors import NotFound
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


@dataclass(frozen=True)
class StaffContext:
    """A staff member acting for one clinic: every staff query is scoped by it."""

    user: User
    clinic: Clinic
    role: str

    @property
    def role_label(self) -> str:
        return str(Membership.Role(self.role).label)


def staff_context(user: User, clinic_id: int) -> StaffContext:
    """The one door to a clinic's data: the user's membership of that clinic, or 404.

    A clinic the user does not belong to is "not found", exactly like one that does not
    exist, so staff of one clinic learn nothing about another.
    """
    membership = (
        Membership.objects.select_related("clinic")
        .filter(user=user, clinic_id=clinic_id, clinic__is_active=True)
        .first()
    )
    if membership is None:
        raise NotFound(_("Clinic not found."), code="clinic_not_found")
    return StaffContext(user=user, clinic=membership.clinic, role=membership.role)


def memberships_of(user: User) -> list[Membership]:
    """The active clinics a user works for, by name."""
    return list(
        Membership.objects.select_related("clinic")
        .filter(user=user, clinic__is_active=True)
        .order_by("clinic__name", "clinic_id")
    )
