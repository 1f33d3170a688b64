"""Statistics and the full export in a real Chromium: Marc, Laval's administrator, opens
the statistics page (the last 30 days), chooses the week ahead, reads its figures,
downloads them as CSV, then downloads all the clinic's data from the exports page.
Screenshots in var/test-artifacts/screenshots."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def download(page: Page, locator: str, into: Path) -> Path:
    with page.expect_download() as started:
        page.locator(locator).click()
    saved = into / started.value.suggested_filename
    started.value.save_as(saved)
    return saved


def test_an_admin_reads_the_weeks_figures_and_downloads_them_and_all_the_data(
    make_page: PageFactory, cast: Cast, tmp_path: Path
) -> None:
    cast.marc.preferred_language = "en"
    cast.marc.save()
    services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 25, 9)).pk
    )
    make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))  # published, still free

    page = make_page(locale="en-CA")
    staff_sign_in(page, cast.marc)
    stats = f"/clinique/{cast.laval.pk}/statistiques/"
    page.goto(stats)
    expect(page.locator("#id_from")).to_have_value("2026-10-25")
    expect(page.locator("#id_to")).to_have_value("2026-11-23")
    assert_accessible(page)

    page.locator("#id_from").fill("2026-11-23")
    page.locator("#id_to").fill("2026-11-29")
    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"from=2026-11-23&to=2026-11-29"))
    summary = page.locator("dl.summary")
    expect(summary).to_contain_text("Bookings")
    expect(summary.locator("dd").first).to_have_text("1")
    expect(summary).to_contain_text("50.0 %")  # one of two published slots booked
    expect(page.locator("table tbody tr")).to_have_count(1)  # one week
    assert_accessible(page)
    screenshot(page, "portal-stats-en")

    figures = download(page, "a[href*='/statistiques.csv']", tmp_path)
    assert figures.name == f"clinique-{cast.laval.pk}-statistiques-2026-11-23-2026-11-29.csv"
    rows = list(csv.reader(io.StringIO(figures.read_text(encoding="utf-8-sig"))))
    assert rows[1][:5] == ["period", "2026-11-23", "2026-11-29", "All practitioners", "1"]

    page.goto(f"/clinique/{cast.laval.pk}/exports/")
    everything = download(page, "a[href$='/export/tout.zip']", tmp_path)
    assert everything.name == f"clinique-{cast.laval.pk}-donnees-2026-11-23.zip"
    with zipfile.ZipFile(everything) as archive:
        described = json.loads(archive.read("datapackage.json"))
        assert {r["path"] for r in described["resources"]} <= set(archive.namelist())
        assert "Marie" in archive.read("patients.csv").decode("utf-8")
