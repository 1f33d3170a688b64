"""The statistics page, its CSV, and the download of all the clinic's data, through the
portal: Marc (administrator) and Sophie (receptionist) see Laval's figures, a practitioner
may not, Karim (Montréal) finds nothing; only Marc downloads everything. Bad input is a
form error on the page (422), never a 500. (Another clinic's ids are walked in
tests/security/test_clinic_isolation.py; the figures themselves in tests/clinics.)"""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import pytest
from django.http import FileResponse
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.clinics.models import Membership
from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot, portal_client
from tests.factories import UserFactory


def stats_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/statistiques/"


def csv_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/statistiques.csv"


def zip_url(cast: Cast) -> str:
    return f"/clinique/{cast.laval.pk}/export/tout.zip"


@pytest.fixture
def practitioner_member(cast: Cast) -> Any:
    user = UserFactory.create(email="roy@example.test")
    Membership.objects.create(
        user=user, clinic=cast.laval, role=Membership.Role.PRACTITIONER, practitioner=cast.dr_roy
    )
    return user


@pytest.fixture
def booked(cast: Cast) -> None:
    """Marie booked Dr Roy on Wednesday; a free slot beside it."""
    services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, 9)).pk
    )
    make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))


def content(response: Any) -> str:
    return str(response.content.decode())


@pytest.mark.parametrize("who", ["marc", "sophie"])
def test_the_front_desk_sees_the_figures_of_the_last_30_days(
    cast: Cast, booked: None, who: str
) -> None:
    before = AuditEntry.objects.count()
    response = portal_client(getattr(cast, who)).get(stats_url(cast))
    assert response.status_code == 200
    page = content(response)
    assert 'value="2026-10-25"' in page  # the default period, shown in the form
    assert 'value="2026-11-23"' in page
    assert "What the figures mean" in page
    assert "Marie" not in page  # counts only
    stats = response.context["stats"]
    assert stats.total.bookings == 0  # Wednesday's visit is after the default period
    assert (
        response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    )
    assert AuditEntry.objects.count() == before  # no patient data: not an audited read


def test_a_chosen_period_and_practitioner(cast: Cast, booked: None) -> None:
    response = portal_client(cast.sophie).get(
        stats_url(cast),
        {"from": "2026-11-23", "to": "2026-11-29", "practitioner": str(cast.dr_roy.pk)},
    )
    assert response.status_code == 200
    total = response.context["stats"].total
    assert (total.bookings, total.booked_slots, total.published_slots) == (1, 1, 2)
    page = content(response)
    assert cast.dr_roy.display_name in page
    assert (
        f"{csv_url(cast)}?from=2026-11-23&amp;to=2026-11-29&amp;practitioner={cast.dr_roy.pk}"
        in (page)
    )


def test_a_practitioner_may_not_see_the_statistics(cast: Cast, practitioner_member: Any) -> None:
    client = portal_client(practitioner_member)
    assert client.get(stats_url(cast)).status_code == 403
    assert client.get(csv_url(cast)).status_code == 403
    assert client.get(zip_url(cast)).status_code == 403


def test_another_clinics_staff_find_nothing(cast: Cast) -> None:
    client = portal_client(cast.karim)
    for url in (stats_url(cast), csv_url(cast), zip_url(cast)):
        response = client.get(url)
        assert response.status_code == 404, url
        assert cast.laval.name.encode() not in response.content


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "2026-13-45"}, "Enter the date as YYYY-MM-DD"),
        ({"to": "next week"}, "Enter the date as YYYY-MM-DD"),
        ({"from": "2026-11-23", "to": "2026-11-01"}, "The last day must not be before the first"),
        ({"from": "2025-01-01", "to": "2026-11-23"}, "Choose a period of at most 366 days."),
        ({"from": "0001-01-01", "to": "0001-01-02"}, "Choose a date from five years ago"),
        ({"from": "9999-12-31", "to": "9999-12-31"}, "Choose a date from five years ago"),
        ({"practitioner": "abc"}, "Select a valid choice"),
    ],
)
@pytest.mark.parametrize("url", [stats_url, csv_url], ids=["page", "csv"])
def test_bad_input_is_a_form_error_not_a_500(
    cast: Cast, query: dict[str, str], message: str, url: Any
) -> None:
    response = portal_client(cast.sophie).get(url(cast), query)
    assert response.status_code == 422
    assert response["Content-Type"].startswith("text/html")
    page = content(response)
    assert message in page
    assert 'class="error-summary"' in page


def test_another_clinics_practitioner_is_not_a_choice(cast: Cast) -> None:
    response = portal_client(cast.sophie).get(
        stats_url(cast), {"practitioner": cast.montreal_doctor.pk}
    )
    assert response.status_code == 422
    assert cast.montreal_doctor.last_name.encode() not in response.content


def test_bad_input_in_french(cast: Cast) -> None:
    response = portal_client(cast.sophie, "fr").get(stats_url(cast), {"practitioner": "abc"})
    assert response.status_code == 422
    page = content(response)
    assert 'lang="fr-CA"' in page
    assert "Sélectionnez un choix valide" in page


def test_the_csv_has_the_figures_of_the_period(cast: Cast, booked: None) -> None:
    response = portal_client(cast.marc).get(
        csv_url(cast), {"from": "2026-11-23", "to": "2026-11-29"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"] == (
        f'attachment; filename="clinique-{cast.laval.pk}-statistiques-2026-11-23-2026-11-29.csv"'
    )
    header, period, week = csv.reader(io.StringIO(response.content.decode("utf-8-sig")))
    assert (period[0], period[1], period[2], period[4]) == (
        "period",
        "2026-11-23",
        "2026-11-29",
        "1",
    )
    assert week[1:3] == ["2026-11-23", "2026-11-29"]
    assert header[4] == "bookings"


def test_the_administrator_downloads_all_the_data(cast: Cast, booked: None) -> None:
    response = portal_client(cast.marc).get(zip_url(cast))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"] == (
        f'attachment; filename="clinique-{cast.laval.pk}-donnees-2026-11-23.zip"'
    )
    assert isinstance(response, FileResponse)
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert "datapackage.json" in archive.namelist()
    assert "Marie" in archive.read("patients.csv").decode()
    assert AuditEntry.objects.filter(action="clinic.data_export", actor_id=cast.marc.pk).exists()


def test_a_receptionist_may_not_download_all_the_data(cast: Cast, booked: None) -> None:
    before = AuditEntry.objects.count()
    response = portal_client(cast.sophie).get(zip_url(cast))
    assert response.status_code == 403
    assert AuditEntry.objects.count() == before


def test_only_the_administrator_is_offered_the_full_export(cast: Cast) -> None:
    exports = f"/clinique/{cast.laval.pk}/exports/"
    assert zip_url(cast) in content(portal_client(cast.marc).get(exports))
    assert zip_url(cast) not in content(portal_client(cast.sophie).get(exports))


def test_a_post_is_refused(cast: Cast) -> None:
    client: Client = portal_client(cast.marc)
    assert client.post(stats_url(cast)).status_code == 405
    assert client.post(zip_url(cast)).status_code == 405
