"""The evening email in a real Chromium (issue 6): on Monday at 18:00 the worker's task
runs, Marc's email lands on the local SMTP server, and the link in it, opened in a browser
with no session (his phone at home), downloads Tuesday's day sheet. pdftoppm turns it into
a PNG kept with the screenshots (var/test-artifacts/screenshots). After Tuesday the same
link shows a readable, accessible "no longer works" page in his language."""

from __future__ import annotations

import shutil
import subprocess
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from rdv.clinics.evening import LinkGone
from rdv.clinics.tasks import send_evening_sheets
from rdv.core import clock
from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot
from tests.e2e.support import Inbox, PageFactory, assert_accessible, first_link, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

ARTIFACTS = Path(settings.VAR_DIR) / "test-artifacts" / "screenshots"


def download(page: Page, link: str, into: Path) -> Path:
    """Open a link that answers with an attachment, as a phone's browser would."""
    # Chromium reports a navigation that turned into a download as a failed navigation.
    with page.expect_download() as started, pytest.raises(PlaywrightError, match="Download"):
        page.goto(link)
    saved = into / started.value.suggested_filename
    started.value.save_as(saved)
    return saved


def to_png(pdf: Path, name: str) -> Path:
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm is not None, "install poppler-utils (make test does)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"{name}.png"
    png.unlink(missing_ok=True)
    subprocess.run(  # noqa: S603 (a fixed tool on a file the test saved)
        [pdftoppm, "-png", "-r", "80", "-singlefile", str(pdf), str(png.with_suffix(""))],
        check=True,
    )
    return png


@pytest.fixture
def site_url(settings: Any, live_server: LiveServer) -> str:
    """Links in emails point at the live server."""
    settings.SITE_URL = live_server.url
    return str(live_server.url)


def test_the_evening_email_links_to_tomorrows_sheet(
    make_page: PageFactory, cast: Cast, smtp_server: Inbox, site_url: str, tmp_path: Path
) -> None:
    services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0)).pk
    )
    services.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.nurse_diane, local(2026, 11, 24, 10, 0)).pk,
        patient_id=cast.lea.pk,
    )
    make_slot(cast.dr_roy, local(2026, 11, 24, 9, 30))  # a free time to fill on paper

    with clock.frozen_now(local(2026, 11, 23, 18, 0), all_threads=True):
        assert send_evening_sheets.call("2026-11-24") == 1
        email = smtp_server.wait_for(cast.marc.email)
        text = email.get_body(("plain",))
        assert isinstance(text, EmailMessage)
        assert "mardi 24 novembre 2026" in str(text.get_content())
        link = first_link(email)
        assert link.startswith(f"{site_url}/feuille-du-jour/")

        page = make_page(locale="fr-CA", width=390, height=844)  # a phone, no session
        sheet = download(page, link, tmp_path)
    assert sheet.name == f"clinique-{cast.laval.pk}-feuille-du-jour-2026-11-24.pdf"
    assert sheet.read_bytes().startswith(b"%PDF")
    png = to_png(sheet, "evening-day-sheet-fr")
    assert png.stat().st_size > 10_000

    with clock.frozen_now(local(2026, 11, 25, 0, 5), all_threads=True):
        response = page.goto(link)
        assert response is not None
        assert response.status == 410
        with translation.override("fr"):
            gone = gettext(str(LinkGone.default_message))
        expect(page.get_by_role("alert")).to_have_text(gone)
        assert_accessible(page)
        screenshot(page, "evening-day-sheet-link-gone-fr")
