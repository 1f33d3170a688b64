from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

from rdv.accounts.services import issue_api_token
from rdv.clinics.models import Clinic, Membership, Practitioner
from rdv.core import clock, demo, geo
from rdv.patients.models import Patient
from rdv.scheduling.models import Slot


def test_full_demo_spreads_378_clinics_over_157_real_municipalities() -> None:
    places = demo.chosen_municipalities()
    counts = demo.clinics_per_municipality(places, demo.CLINIC_COUNT)
    assert len(places) == 157
    assert sum(counts) == 378
    assert min(counts) >= 1
    assert {p.geonameid for p in places} <= {m.geonameid for m in geo.municipalities()}
    by_name = dict(zip([p.name for p in places], counts, strict=True))
    assert by_name["Montréal"] > by_name["Laval"] > by_name["Rimouski"] >= 1


def test_small_demo_seed_creates_everyone_a_person_needs(db: None, tmp_path: Path) -> None:
    path = tmp_path / "demo-credentials.json"
    summary = demo.seed(path, clinic_count=12, municipality_count=4, days=3)

    assert summary.clinics == Clinic.objects.count() == 12
    assert Clinic.objects.values("municipality_name").distinct().count() == 4
    assert Practitioner.objects.count() >= 36
    assert summary.slots == Slot.objects.count() > 0
    first, last = clock.local_day_bounds(
        clock.local_today(), clock.local_today() + timedelta(days=2)
    )
    assert not Slot.objects.exclude(start__gte=first, start__lt=last).exists()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    credentials = json.loads(path.read_text())
    assert set(credentials) == {
        "patient",
        "receptionist",
        "clinic_admin",
        "other_clinic_staff",
        "platform_admin",
    }
    marie = credentials["patient"]
    assert issue_api_token(email=marie["email"], password=marie["password"]).startswith("rdv_")
    assert Patient.objects.filter(account__email=marie["email"]).count() == 2
    receptionist = Membership.objects.get(user__email=credentials["receptionist"]["email"])
    other = Membership.objects.get(user__email=credentials["other_clinic_staff"]["email"])
    assert receptionist.clinic.municipality_name == "Laval"
    assert other.clinic != receptionist.clinic
