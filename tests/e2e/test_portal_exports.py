"""Continuity in a real Chromium: Sophie, the receptionist, opens the exports page from the
portal's menu, downloads today's day sheet and the week's spreadsheet. The sheet is turned
into a PNG by pdftoppm and kept with the screenshots (var/test-artifacts/screenshots), so a
person can see what the clinic would print."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(settings.VAR_DIR) / "test-artifacts" / "screenshots"


def download(page: Page, button: str, into: Path) -> Path:
    with page.expect_download() as started:
        page.locator(button).click()
    saved = into / started.value.suggested_filename
    started.value.save_as(saved)
    return saved


def test_the_front_desk_downloads_the_day_sheet_and_the_week(
    make_page: PageFactory, cast: Cast, tmp_path: Path
) -> None:
    services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 23, 9, 0)).pk
    )
    services.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.nurse_diane, local(2026, 11, 25, 10, 0)).pk,
        patient_id=cast.lea.pk,
    )
    make_slot(cast.dr_roy, local(2026, 11, 23, 9, 30))  # a free time to fill on paper

    page = make_page(locale="fr-CA")
    staff_sign_in(page, cast.sophie)
    page.goto(f"/clinique/{cast.laval.pk}/agenda/")
    page.locator(f"nav a[href='/clinique/{cast.laval.pk}/exports/']").click()
    expect(page).to_have_url(re.compile(rf"/clinique/{cast.laval.pk}/exports/$"))
    assert_accessible(page)
    screenshot(page, "portal-exports-fr")

    sheet = download(page, "form[action$='/feuille-du-jour.pdf'] button", tmp_path)
    assert sheet.name == f"clinique-{cast.laval.pk}-feuille-du-jour-2026-11-23.pdf"
    assert sheet.read_bytes().startswith(b"%PDF")
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "install poppler-utils (make test does)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / "portal-day-sheet-fr.png"
    png.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603 (a fixed tool on a file the test saved)
        [pdftoppm, "-png", "-r", "80", "-singlefile", str(sheet), str(png.with_suffix(""))],
        check=True,
    )
    assert png.exists()
    assert png.stat().st_size > 10_000

    spreadsheet = download(page, "form[action$='/agenda.csv'] button:not([formaction])", tmp_path)
    assert spreadsheet.suffix == ".csv"
    text = spreadsheet.read_text(encoding="utf-8-sig")
    assert "Marie" in text
    assert "Léa" in text

    calendar = download(page, "button[formaction$='/agenda.ics']", tmp_path)
    assert calendar.read_text(encoding="utf-8").startswith("BEGIN:VCALENDAR")
