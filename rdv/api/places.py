from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from rdv.api.schemas import (
    ClinicOut,
    ClinicsQuery,
    ErrorEnvelope,
    MunicipalityOut,
    MunicipalityQuery,
)
from rdv.clinics.queries import clinics_near
from rdv.core.geo import search_municipalities
from rdv.scheduling.search import place_or_error

router = Router(tags=["places"])


@router.get("/municipalities", response={200: list[MunicipalityOut], 422: ErrorEnvelope})
def municipalities(request: HttpRequest, params: Query[MunicipalityQuery]) -> list[MunicipalityOut]:
    """Autocomplete Quebec municipalities (accent- and case-insensitive)."""
    q, limit = params.q, params.limit
    return [
        MunicipalityOut(
            id=m.geonameid,
            name=m.name,
            latitude=m.latitude,
            longitude=m.longitude,
            population=m.population,
        )
        for m in search_municipalities(q, limit=limit)
    ]


@router.get("/clinics", response={200: list[ClinicOut], 422: ErrorEnvelope})
def clinics(request: HttpRequest, params: Query[ClinicsQuery]) -> list[ClinicOut]:
    """Clinics within `radius_km` of a place, nearest first."""
    place = place_or_error(params.near)
    nearby = clinics_near(
        latitude=place.latitude,
        longitude=place.longitude,
        radius_km=params.radius_km,
        limit=params.limit,
    )
    return [
        ClinicOut(
            id=n.clinic.pk,
            name=n.clinic.name,
            kind=n.clinic.kind,
            municipality=n.clinic.municipality_name,
            address=n.clinic.address,
            phone=n.clinic.phone,
            latitude=n.clinic.latitude,
            longitude=n.clinic.longitude,
            distance_km=round(n.distance_km, 1),
        )
        for n in nearby
    ]
