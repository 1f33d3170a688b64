"""The walk-in pages of the clinic portal, through Django's test client. (Every portal
route is also walked for isolation in tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

from datetime import date, time
from typing import Any

from django.test import Client

from rdv.clinics.models import Membership
from rdv.clinics.queries import staff_context
from rdv.walkin import services
from rdv.walkin.models import WalkIn, Wave
from tests.conftest import Cast, portal_client
from tests.factories import UserFactory

TODAY = date(2026, 11, 23)


def staff(user: Any, language: str = "en") -> Client:
    return portal_client(user, language)


def wave_today(cast: Cast, capacity: int = 2) -> Wave:
    (wave,) = services.open_waves(
        staff_context(cast.sophie, cast.laval.pk),
        day=TODAY,
        first_start=time(8),
        last_start=time(8),
        capacity=capacity,
    )
    return wave


def test_opening_waves_from_the_page_then_seeing_them(cast: Cast) -> None:
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/sans-rendez-vous/"
    response = client.post(
        url + "vagues/",
        {
            "date": "2026-11-24",
            "first_start": "08:00",
            "last_start": "11:30",
            "minutes": "30",
            "capacity": "6",
            "practitioner": str(cast.dr_roy.pk),
        },
    )
    assert response.status_code == 302
    assert response["Location"] == url + "?date=2026-11-24"
    assert Wave.objects.filter(practitioner=cast.dr_roy).count() == 8
    page = client.get(response["Location"]).content.decode()
    assert "8 waves opened." in page
    assert page.count("0 of 6") == 8


def test_a_refused_opening_keeps_the_form_and_says_why(cast: Cast) -> None:
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/sans-rendez-vous/vagues/"
    form = {"date": "2026-11-22", "first_start": "08:00", "last_start": "09:00"}
    past = client.post(url, {**form, "minutes": "30", "capacity": "4"})
    assert past.status_code == 422
    assert "today or a later day" in past.content.decode()
    missing = client.post(url, {**form, "date": "2026-11-24"})
    assert missing.status_code == 422
    wave_today(cast)
    overlap = client.post(url, {**form, "date": "2026-11-23", "minutes": "30", "capacity": "4"})
    assert overlap.status_code == 409
    assert "is already open" in overlap.content.decode()
    assert Wave.objects.count() == 1


def test_a_full_wave_refuses_the_next_walk_in_with_a_409_and_nothing_written(
    cast: Cast,
) -> None:
    wave = wave_today(cast, capacity=2)
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/sans-rendez-vous/{wave.pk}/"
    for name in ("Ana", "Bob"):
        added = client.post(url + "ajouter/", {"first_name": name, "last_name": "Tremblay"})
        assert added.status_code == 302
        assert added["Location"] == url
    refused = client.post(url + "ajouter/", {"first_name": "Chloé", "last_name": "Gagnon"})
    assert refused.status_code == 409
    page = refused.content.decode()
    summary = page[page.index('id="error-summary"') :]
    assert "This wave is full (2 patients)." in summary[: summary.index("</div>")]
    assert 'value="Chloé"' in page  # what was typed is kept
    assert list(WalkIn.objects.values_list("first_name", "place")) == [("Ana", 1), ("Bob", 2)]


def test_a_bad_phone_is_shown_on_its_field(cast: Cast) -> None:
    wave = wave_today(cast)
    url = f"/clinique/{cast.laval.pk}/sans-rendez-vous/{wave.pk}/ajouter/"
    response = staff(cast.sophie).post(
        url, {"first_name": "Ana", "last_name": "Tremblay", "phone": "12"}
    )
    assert response.status_code == 422
    assert 'id="id_phone_error"' in response.content.decode()
    assert not WalkIn.objects.exists()


def test_the_queue_page_shows_places_positions_and_estimates(cast: Cast) -> None:
    wave = wave_today(cast, capacity=2)
    client = staff(cast.sophie)
    base = f"/clinique/{cast.laval.pk}/sans-rendez-vous/"
    client.post(f"{base}{wave.pk}/ajouter/", {"first_name": "Ana", "last_name": "Tremblay"})
    client.post(f"{base}{wave.pk}/ajouter/", {"first_name": "Bob", "last_name": "Roy"})
    page = client.get(base).content.decode()
    assert "2 of 2" in page
    assert page.index("Tremblay, Ana") < page.index("Roy, Bob")
    assert "08:15" in page  # Bob: the second of two places in 30 minutes


def test_calling_and_marking_from_the_wave_page(cast: Cast) -> None:
    wave = wave_today(cast, capacity=2)
    client = staff(cast.sophie)
    base = f"/clinique/{cast.laval.pk}/sans-rendez-vous/"
    client.post(f"{base}{wave.pk}/ajouter/", {"first_name": "Ana", "last_name": "Tremblay"})
    called = client.post(f"{base}{wave.pk}/appeler/")
    assert called.status_code == 302
    ana = WalkIn.objects.get()
    assert ana.status == "called"
    seen = client.post(f"{base}personne/{ana.pk}/statut/", {"walk_in_status": "seen"})
    assert (seen.status_code, seen["Location"]) == (302, f"{base}{wave.pk}/")
    again = client.post(f"{base}personne/{ana.pk}/statut/", {"walk_in_status": "seen"})
    assert again.status_code == 409
    assert client.post(f"{base}{wave.pk}/appeler/").status_code == 409  # nobody waits
    bad = client.post(f"{base}personne/{ana.pk}/statut/", {"walk_in_status": "waiting"})
    assert bad.status_code == 422
    ana.refresh_from_db()
    assert ana.status == "seen"


def test_a_practitioner_gets_403_and_another_clinic_404(cast: Cast) -> None:
    wave = wave_today(cast)
    doctor = UserFactory.create()
    Membership.objects.create(user=doctor, clinic=cast.laval, role=Membership.Role.PRACTITIONER)
    base = f"/clinique/{cast.laval.pk}/sans-rendez-vous/"
    as_doctor = staff(doctor)
    assert as_doctor.get(base).status_code == 403
    assert as_doctor.get(f"{base}{wave.pk}/").status_code == 403
    refused = as_doctor.post(f"{base}{wave.pk}/ajouter/", {"first_name": "A", "last_name": "B"})
    assert refused.status_code == 403
    assert "Walk-ins" not in as_doctor.get(f"/clinique/{cast.laval.pk}/agenda/").content.decode()
    as_karim = staff(cast.karim)
    assert as_karim.get(base).status_code == 404
    assert (
        as_karim.get(f"/clinique/{cast.montreal.pk}/sans-rendez-vous/{wave.pk}/").status_code == 404
    )
    assert not WalkIn.objects.exists()


def test_days_far_from_today_are_refused_not_failing(cast: Cast) -> None:
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/sans-rendez-vous/"
    for day in ("9999-12-31", "0001-01-01"):
        assert client.get(url, {"date": day}).status_code == 200, day
        opened = client.post(
            f"{url}vagues/",
            {
                "date": day,
                "first_start": "20:00",
                "last_start": "20:30",
                "minutes": "30",
                "capacity": "4",
            },
        )
        assert opened.status_code == 422, day
