"""Where things are: Quebec municipalities, postal-code areas, and distances.

Reference data is read once from the small CSV files in rdv/core/data (sources and
licences in rdv/core/data/SOURCES.md).
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
EARTH_RADIUS_KM = 6371.0088

# GeoNames lists census tracts near Montréal as "Ct 0001"…; they are not places a
# person would type or live in.
_CENSUS_TRACT = re.compile(r"^Ct \d+$")
_FSA = re.compile(r"^([GHJ]\d[A-Z])(?:\s*\d[A-Z]\d)?$")
_LAT_LON = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*,\s*(-?\d{1,3}(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Municipality:
    geonameid: int
    name: str
    latitude: float
    longitude: float
    population: int


@dataclass(frozen=True)
class Place:
    """A point a search starts from, with what to call it."""

    label: str
    latitude: float
    longitude: float


def normalise(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form used to match place names."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = re.sub(r"[-'’.\s]+", " ", plain).strip()
    plain = re.sub(r"^st ", "saint ", plain)
    plain = re.sub(r"^ste ", "sainte ", plain)
    return plain


@cache
def municipalities() -> tuple[Municipality, ...]:
    """Quebec municipalities, most populous first."""
    with (DATA_DIR / "quebec_municipalities.csv").open(encoding="utf-8", newline="") as f:
        rows = [
            Municipality(
                geonameid=int(row["geonameid"]),
                name=row["name"],
                latitude=float(row["latitude"]),
                longitude=float(row["longitude"]),
                population=int(row["population"]),
            )
            for row in csv.DictReader(f)
            if not _CENSUS_TRACT.match(row["name"])
        ]
    return tuple(rows)


@cache
def _municipalities_by_key() -> dict[str, Municipality]:
    index: dict[str, Municipality] = {}
    for municipality in municipalities():  # most populous first wins a shared name
        index.setdefault(normalise(municipality.name), municipality)
    return index


@cache
def _fsa_centroids() -> dict[str, tuple[float, float]]:
    with (DATA_DIR / "quebec_fsa.csv").open(encoding="utf-8", newline="") as f:
        return {
            row["fsa"]: (float(row["latitude"]), float(row["longitude"]))
            for row in csv.DictReader(f)
            if row["fsa"] != "H0H"  # reserved code (Santa Claus), placed at the pole
        }


def municipality_by_id(geonameid: int) -> Municipality | None:
    return next((m for m in municipalities() if m.geonameid == geonameid), None)


def search_municipalities(query: str, *, limit: int = 10) -> list[Municipality]:
    """Autocomplete: names starting with the query first, then names containing it."""
    key = normalise(query)
    if not key:
        return []
    prefix = [m for m in municipalities() if normalise(m.name).startswith(key)]
    inner = [m for m in municipalities() if key in normalise(m.name) and m not in prefix]
    return (prefix + inner)[:limit]


def resolve_place(text: str) -> Place | None:
    """Turn what a person typed (a municipality, a postal code, or "lat,lon") into a point."""
    lat_lon = _LAT_LON.match(text)
    if lat_lon:
        lat, lon = float(lat_lon.group(1)), float(lat_lon.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
        return Place(label=f"{lat:.4f},{lon:.4f}", latitude=lat, longitude=lon)
    postal = _FSA.match(text.strip().upper())
    if postal:
        centroid = _fsa_centroids().get(postal.group(1))
        if centroid is None:
            return None
        return Place(label=postal.group(1), latitude=centroid[0], longitude=centroid[1])
    municipality = _municipalities_by_key().get(normalise(text))
    if municipality is None:
        return None
    return Place(
        label=municipality.name,
        latitude=municipality.latitude,
        longitude=municipality.longitude,
    )


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def bounding_box(lat: float, lon: float, radius_km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) enclosing the circle; a cheap index pre-filter.

    Slightly generous (2 %): the circle bulges past a parallel-based width, and the exact
    distance check follows anyway.
    """
    radius_km *= 1.02
    d_lat = math.degrees(radius_km / EARTH_RADIUS_KM)
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    d_lon = math.degrees(radius_km / (EARTH_RADIUS_KM * cos_lat))
    return lat - d_lat, lat + d_lat, lon - d_lon, lon + d_lon
