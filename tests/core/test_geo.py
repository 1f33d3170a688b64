from __future__ import annotations

import pytest

from rdv.core import geo


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("Laval", "Laval"),
        ("laval", "Laval"),
        ("MONTREAL", "Montréal"),
        ("Quebec", "Québec"),
        ("trois rivieres", "Trois-Rivières"),
        ("St-Jérôme", "Saint-Jérôme"),
        ("  Sherbrooke ", "Sherbrooke"),
    ],
)
def test_municipality_names_resolve_whatever_the_accents_case_or_abbreviation(
    typed: str, label: str
) -> None:
    place = geo.resolve_place(typed)
    assert place is not None
    assert place.label == label


def test_postal_code_resolves_to_its_area() -> None:
    place = geo.resolve_place("h7n 1a1")
    assert place == geo.Place(label="H7N", latitude=45.5772, longitude=-73.7007)
    assert geo.resolve_place("H7N") == place


@pytest.mark.parametrize(
    "typed", ["Toronto", "H0H 0H0", "M5V 2T6", "91,10", "45.5,-200", "", "Lava"]
)
def test_unknown_places_do_not_resolve(typed: str) -> None:
    assert geo.resolve_place(typed) is None


def test_coordinates_resolve_as_given() -> None:
    assert geo.resolve_place("45.5,-73.6") == geo.Place("45.5000,-73.6000", 45.5, -73.6)


def test_census_tracts_are_not_municipalities() -> None:
    assert not [m for m in geo.municipalities() if m.name.startswith("Ct ")]
    assert len(geo.municipalities()) > 400


def test_shared_names_resolve_to_the_most_populous_place() -> None:
    twins = [m for m in geo.municipalities() if m.name == "Saint-Henri"]
    place = geo.resolve_place("Saint-Henri")
    assert place is not None
    assert place.latitude == max(twins, key=lambda m: m.population).latitude


def test_distance_montreal_quebec_is_about_233_km() -> None:
    montreal, quebec = geo.resolve_place("Montréal"), geo.resolve_place("Québec")
    assert montreal is not None
    assert quebec is not None
    assert (
        225
        < geo.distance_km(montreal.latitude, montreal.longitude, quebec.latitude, quebec.longitude)
        < 240
    )


def test_bounding_box_contains_the_circle() -> None:
    min_lat, max_lat, min_lon, max_lon = geo.bounding_box(45.5, -73.6, 25)
    assert geo.distance_km(45.5, -73.6, max_lat, -73.6) >= 25
    assert geo.distance_km(45.5, -73.6, 45.5, max_lon) >= 25
    assert geo.distance_km(45.5, -73.6, max_lat, max_lon) < 40
    assert min_lat < 45.5 < max_lat
    assert min_lon < -73.6 < max_lon
