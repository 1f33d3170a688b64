"""The appointment finder in a real Chromium: Marie files a search ("offer it to me
first"), pays with the built-in test provider, Paul cancels his appointment, the worker's
engine offers the freed time to Marie, she accepts it and it is booked; her receipt (PDF)
downloads and reads 21,79 $. Every finder page passes the accessibility audit.
"""

from __future__ import annotations

import re
import shutil
import subprocess  # nosec B404  (pdftotext, a fixed command, in tests only)
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from rdv.billing import services as billing
from rdv.finder import engine
from rdv.finder import services as finder
from rdv.finder.models import FinderRequest, Offer
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import PASSWORD, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, screenshot, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(page: Page, email: str) -> None:
    page.goto("/compte/connexion/")
    page.locator("#id_email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/connexion/" not in url)


@pytest.fixture
def pauls_appointment(cast: Any) -> Appointment:
    """Wednesday 09:00 with Dr Roy at Laval, booked by Paul: the time that will be freed."""
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9))
    return services.book_appointment(user=cast.paul, slot_id=slot.pk)


def pdf_text(path: Path) -> str:
    return subprocess.run(  # noqa: S603  # nosec B603
        ["pdftotext", str(path), "-"],  # noqa: S607
        capture_output=True,
        check=True,
    ).stdout.decode()


@pytest.mark.parametrize("language", ["en", "fr"])
def test_a_patient_files_pays_is_offered_a_freed_time_and_accepts_it(
    make_page: PageFactory, cast: Any, pauls_appointment: Appointment, language: str
) -> None:
    page = make_page(locale=f"{language}-CA")
    sign_in(page, cast.marie.email)

    page.goto("/chercheur/")
    # The account's language wins over the browser's once signed in.
    expect(page.locator("main")).to_contain_text(re.compile(r"21,79\u202f\$|\$21\.79"))
    assert_accessible(page)
    page.locator("a[href='/chercheur/nouvelle-demande/']").first.click()
    page.wait_for_url("**/chercheur/nouvelle-demande/")
    assert_accessible(page)
    page.locator("#id_patient_id").select_option(str(cast.marie_self.pk))
    page.locator("input[name=mode][value=offer]").check()
    page.locator("#id_appointment_type").select_option("urgent")
    page.locator("#id_near").fill("Laval")
    page.locator("#id_window_0_weekday").select_option("2")  # Wednesdays
    page.locator("#id_window_0_start").fill("08:00")
    page.locator("#id_window_0_end").fill("12:00")
    page.locator("main form button[type=submit]").click()

    page.wait_for_url("**/paiement/")
    assert_accessible(page)
    screenshot(page, f"finder-payment-{language}")
    page.locator("button[name=outcome][value=pay]").click()
    page.wait_for_url(re.compile(r"/chercheur/demandes/\d+/$"))
    request = FinderRequest.objects.get()
    assert request.status == "open"
    assert_accessible(page)

    # Paul cancels; the worker turns the freed slot into an offer for Marie.
    services.cancel_appointment(user=cast.paul, appointment_id=pauls_appointment.pk, reason="")
    engine.process_events()
    offer = Offer.objects.get(request=request, status="pending")
    assert offer.slot_id == pauls_appointment.slot_id

    page.reload()
    expect(page.locator(f"form[action='/chercheur/offres/{offer.pk}/accepter/']")).to_be_visible()
    assert_accessible(page)
    screenshot(page, f"finder-offer-{language}")
    page.locator(f"form[action='/chercheur/offres/{offer.pk}/accepter/'] button").click()
    page.wait_for_url("**/rendez-vous/*/")
    appointment = Appointment.objects.get(slot_id=offer.slot_id, status="booked")
    assert appointment.patient == cast.marie_self
    request.refresh_from_db()
    assert (request.status, request.appointment) == ("booked", appointment)

    page.goto(f"/chercheur/demandes/{request.pk}/")
    assert_accessible(page)
    with page.expect_download() as download_info:
        page.locator(f"a[href='/chercheur/demandes/{request.pk}/recu.pdf']").click()
    path = Path(download_info.value.path())
    assert path.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        assert "21,79" in pdf_text(path)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_alerts_page_adds_and_removes_an_alert(
    make_page: PageFactory, cast: Any, language: str
) -> None:
    page = make_page(locale=f"{language}-CA")
    sign_in(page, cast.marie.email)
    page.goto("/chercheur/alertes/")
    assert_accessible(page)
    page.locator("input[name=scope][value=area]").check()
    page.locator("#id_near").fill("Atlantis")
    page.locator("main form button.primary").click()
    expect(page.locator("#error-summary")).to_be_visible()
    assert_accessible(page)
    page.locator("#id_near").fill("Laval")
    page.locator("main form button.primary").click()
    expect(page.locator("form[action$='/supprimer/']")).to_have_count(1)
    assert_accessible(page)
    page.locator("form[action$='/supprimer/'] button").click()
    expect(page.locator("form[action$='/supprimer/']")).to_have_count(0)


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_clinic_reads_the_fairness_report_of_the_times_given(
    make_page: PageFactory, cast: Any, pauls_appointment: Appointment, language: str
) -> None:
    """After the engine offered Paul's freed time to Marie, Laval's administrator reads the
    report: one time given, open to the public, nobody passed over; accessible and no
    sideways scrolling on a phone."""
    request = finder.create_request(
        user=cast.marie,
        spec=finder.RequestSpec(
            patient_id=None,
            mode="offer",
            appointment_type="urgent",
            place="Laval",
            radius_km=25,
            earliest_date=date(2026, 11, 23),
            latest_date=date(2026, 12, 4),
            time_windows=(),
            language="",
            deadline=date(2026, 11, 30),
            notify_by_email=True,
            notify_by_sms=False,
        ),
    )
    assert request.payment_id is not None
    billing.pay_with_test_provider(account=cast.marie, payment_id=request.payment_id, succeed=True)
    services.cancel_appointment(user=cast.paul, appointment_id=pauls_appointment.pk, reason="")
    engine.process_events()

    page = make_page(locale=f"{language}-CA")
    staff_sign_in(page, cast.marc)
    page.goto(f"/clinique/{cast.laval.pk}/equite/")
    expect(page.locator("main table").first).to_contain_text("100")
    expect(page.locator("main")).to_contain_text(f"#{request.pk}")
    assert "Marie" not in page.locator("main").inner_text()
    assert_accessible(page)
    page.set_viewport_size({"width": 375, "height": 812})
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, f"finder-fairness-{language}")
