"""Every patient and clinic-portal page, in both languages: no serious or critical
accessibility violation, no sideways scrolling at 375 px, and under 100 KB transferred
(fonts excluded).

The list below is the patient site; a page added to rdv/web must be added here (the last
test compares it with the URL configuration, so a forgotten page fails).
"""

from __future__ import annotations

from datetime import date, time, timedelta
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver
from playwright.sync_api import Page

from rdv.billing import services as billing
from rdv.clinics import staff
from rdv.clinics.models import StaffInvitation
from rdv.clinics.queries import staff_context
from rdv.finder import services as finder
from rdv.notifications.links import make_token, make_unsubscribe_token
from rdv.patients.ramq import expected_letters
from rdv.patients.services import set_health_card
from rdv.scheduling import services
from rdv.scheduling.models import Slot
from rdv.walkin import services as walkin
from tests.conftest import PASSWORD, local, make_slot
from tests.e2e.support import PageFactory, assert_accessible, staff_sign_in

pytestmark = pytest.mark.django_db(transaction=True)

PAGE_BUDGET_BYTES = 100 * 1024

# (url name, path template); {slot}, {appointment}, {dependant}, {link} and {unsubscribe}
# are filled in below.
VISITOR_PAGES = [
    ("search", "/"),
    ("search", "/?near=Laval&radius_km=25"),
    ("search", "/?near=Gaspé&radius_km=5"),  # the empty state
    ("search", "/?near=Atlantis"),  # the error summary
    ("slot", "/creneaux/{slot}/"),
    ("sign_in", "/compte/connexion/"),
    ("sign_up", "/compte/inscription/"),
    ("password_reset", "/compte/mot-de-passe/oublie/"),
    ("password_reset_sent", "/compte/mot-de-passe/envoye/"),
    ("privacy", "/confidentialite/"),
    ("appointment_link", "/r/cancel/{link}/"),  # a message's one-click link
    ("unsubscribe", "/desabonnement/{unsubscribe}/"),  # a reminder's "stop reminders" link
    ("staff_invitation", "/invitation-equipe/{invitation}/"),  # "sign in with that address"
]
SIGNED_IN_PAGES = [
    ("search", "/?near=Laval&radius_km=25"),
    ("slot", "/creneaux/{slot}/"),
    ("appointments", "/mes-rendez-vous/"),
    ("appointment", "/rendez-vous/{appointment}/"),
    ("cancel", "/rendez-vous/{appointment}/annuler/"),
    ("family_search", "/visite-familiale/"),
    ("family_search", "/visite-familiale/?near=Laval&patients={self}&patients={dependant}"),
    ("verify_email", "/compte/confirmation/"),
    ("profile", "/compte/profil/"),
    ("dependants", "/compte/proches/"),
    ("dependant_add", "/compte/proches/ajouter/"),
    ("dependant_edit", "/compte/proches/{dependant}/"),
    ("dependant_remove", "/compte/proches/{dependant}/retirer/"),
    ("passkeys", "/compte/cles-d-acces/"),
    ("authenticator", "/compte/authentificateur/"),
    ("access_log", "/compte/acces-a-mon-dossier/"),
    ("my_data", "/compte/mes-donnees/"),
    ("staff_invitation", "/invitation-equipe/{invitation}/"),  # "you are not the invitee"
    ("finder_requests", "/chercheur/"),
    ("finder_new", "/chercheur/nouvelle-demande/"),
    ("finder_request", "/chercheur/demandes/{finder_paid}/"),
    ("finder_pay", "/chercheur/demandes/{finder_unpaid}/paiement/"),  # the test provider's page
    ("finder_alerts", "/chercheur/alertes/"),
]
# The clinic portal, signed in as Laval's administrator (every role's pages are among
# them); {clinic} and {appointment} are filled in below.
STAFF_PAGES = [
    ("portal_clinics", "/clinique/"),  # one clinic: straight on to its agenda
    ("portal_agenda", "/clinique/{clinic}/agenda/?date=2026-11-25"),
    ("portal_agenda", "/clinique/{clinic}/agenda/?date=2026-11-26"),  # an empty day
    ("portal_walkins", "/clinique/{clinic}/sans-rendez-vous/"),  # today's waves and queue
    ("portal_walkins", "/clinique/{clinic}/sans-rendez-vous/?date=2026-11-26"),  # no wave
    ("portal_wave", "/clinique/{clinic}/sans-rendez-vous/{wave}/"),
    ("portal_appointment", "/clinique/{clinic}/rendez-vous/{appointment}/"),
    ("portal_exports", "/clinique/{clinic}/exports/"),
    ("portal_practitioners", "/clinique/{clinic}/praticiens/"),
    ("portal_practitioner", "/clinique/{clinic}/praticiens/{practitioner}/"),
    ("portal_phone", "/clinique/{clinic}/telephone/"),
    # Its other states (an error, the people found) and the caller's free times follow a
    # POST: the test walks them through the form, below.
    ("portal_phone_slots", "/clinique/{clinic}/telephone/creneaux/"),
    ("portal_phone_new", "/clinique/{clinic}/telephone/nouveau/"),  # a caller's file
    ("portal_closures", "/clinique/{clinic}/fermetures/"),
    ("portal_settings", "/clinique/{clinic}/parametres/"),
    ("portal_stats", "/clinique/{clinic}/statistiques/"),  # the last 30 days
    ("portal_stats", "/clinique/{clinic}/statistiques/?from=2026-11-23&to=2026-11-01"),  # error
    ("portal_staff", "/clinique/{clinic}/equipe/"),
    ("portal_agenda_week", "/clinique/{clinic}/agenda/semaine/?date=2026-11-23"),
    # A practitioner's own pages, seen by the administrator: the explanation (the linked
    # practitioner's are audited in tests/e2e/test_portal_practitioner.py).
    ("portal_my_day", "/clinique/{clinic}/ma-journee/"),
    ("portal_my_patients", "/clinique/{clinic}/mes-patients/"),
    ("portal_registered", "/clinique/{clinic}/patients-inscrits/"),
    ("portal_practitioner_patients", "/clinique/{clinic}/praticiens/{practitioner}/patients/"),
    ("portal_move", "/clinique/{clinic}/rendez-vous/{appointment}/deplacer/?date=2026-11-25"),
    ("portal_fairness", "/clinique/{clinic}/equite/"),  # the last 30 days
    ("portal_fairness", "/clinique/{clinic}/equite/?from=2026-11-23&to=2026-11-01"),  # error
]
# Pages that are not pages: downloads, form targets, redirects, one-time links.
NOT_PAGES = {
    "portal_attendance",
    "portal_phone_book",
    "portal_phone_choose",
    "portal_waves_open",
    "portal_walkin_add",
    "portal_wave_call_next",
    "portal_walkin_status",
    "portal_cancel",
    "portal_day_sheet",
    "evening_sheet",
    "portal_export_csv",
    "portal_export_ics",
    "portal_stats_csv",
    "portal_fairness_csv",
    "finder_cancel",
    "finder_receipt",
    "finder_accept",
    "finder_decline",
    "finder_alert_remove",
    "portal_export_all",
    "portal_rule_add",
    "portal_rule_remove",
    "portal_rule_release",
    "portal_closure_add",
    "portal_holidays_add",
    "portal_closure_remove",
    "portal_staff_invite",
    "portal_invitation_revoke",
    "portal_member_role",
    "portal_member_practitioner",
    "portal_member_remove",
    "portal_register_patient",
    "portal_unregister_patient",
    "hold",
    "book",
    "appointment_ics",
    "move",
    "sign_out",
    "switch_language",
    "family_book",
    "data_export",
    "delete_account",
    "account_deleted",
    "password_reset_confirm",
    "passkey_register_begin",
    "passkey_register_finish",
    "passkey_remove",
    "passkey_sign_in_begin",
    "passkey_sign_in_finish",
    "authenticator_begin",
    "authenticator_confirm",
    "authenticator_recovery_codes",
}


def walk_in_wave(cast: Any) -> int:
    """Today's 08:00 walk-in wave at Laval, with one person waiting."""
    ctx = staff_context(cast.marc, cast.laval.pk)
    wave = walkin.open_waves(
        ctx, day=date(2026, 11, 23), first_start=time(8), last_start=time(8, 30), capacity=2
    )[0]
    walkin.add_walk_in(ctx, wave.pk, first_name="Ana", last_name="Tremblay", phone="4505550123")
    return wave.pk


def staff_invitation(cast: Any) -> str:
    """An open invitation to Laval's staff, for Dr Roy's account: its link's secret."""
    token = "invitation-secret-for-the-page-audit-0123456789"
    StaffInvitation.objects.create(
        clinic=cast.laval,
        email="jean.roy@example.test",
        role="practitioner",
        practitioner=cast.dr_roy,
        invited_by=cast.marc,
        token_hash=staff.token_hash(token),
        created_at=local(2026, 11, 23, 8, 0),
        expires_at=local(2026, 11, 30, 8, 0),
    )
    return token


def finder_requests(cast: Any) -> dict[str, int]:
    """Two of Marie's finder searches: one paid (searching), one waiting for payment."""
    ids = {}
    for key, pay in (("finder_paid", True), ("finder_unpaid", False)):
        request = finder.create_request(
            user=cast.marie,
            spec=finder.RequestSpec(
                patient_id=None,
                mode="offer",
                appointment_type="urgent",
                place="Laval",
                radius_km=25,
                earliest_date=date(2026, 11, 24),
                latest_date=date(2026, 12, 4),
                time_windows=(finder.TimeWindow(weekday=2, start=time(8), end=time(12)),),
                language="",
                deadline=date(2026, 11, 30),
                notify_by_email=True,
                notify_by_sms=False,
            ),
        )
        if pay and request.payment_id is not None:
            billing.pay_with_test_provider(
                account=cast.marie, payment_id=request.payment_id, succeed=True
            )
        ids[key] = request.pk
    return ids


@pytest.fixture
def marie_booked(cast: Any) -> dict[str, Any]:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    make_slot(cast.dr_roy, local(2026, 11, 25, 9, 30))
    make_slot(cast.nurse_diane, local(2026, 11, 25, 10, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=first.pk, reason="Toux")
    free = Slot.objects.filter(status="free").order_by("start").first()
    assert free is not None
    return {
        "slot": free.pk,
        "appointment": appointment.pk,
        "self": cast.marie_self.pk,
        "dependant": cast.lea.pk,
        "link": make_token(appointment, "cancel"),
        "unsubscribe": make_unsubscribe_token(cast.marie),
        "invitation": staff_invitation(cast),
        "clinic": cast.laval.pk,
        "wave": walk_in_wave(cast),
        "practitioner": cast.dr_roy.pk,
        **finder_requests(cast),
    }


def transferred(page: Page) -> int:
    """Bytes the page and its resources took on the wire (compressed bodies), fonts aside."""
    total: int = page.evaluate(
        """() => {
            const nav = performance.getEntriesByType("navigation")[0];
            let bytes = nav.encodedBodySize;
            for (const entry of performance.getEntriesByType("resource")) {
                if (!/\\.(woff2?|ttf|otf)(\\?|$)/.test(entry.name)) {
                    bytes += entry.encodedBodySize;
                }
            }
            return bytes;
        }"""
    )
    return total


def audit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None
    assert response.status < 500, f"{path} answered {response.status}"
    page.wait_for_load_state("load")
    assert_accessible(page)
    size = transferred(page)
    assert size < PAGE_BUDGET_BYTES, f"{path} weighs {size / 1024:.0f} KB"
    page.set_viewport_size({"width": 375, "height": 812})
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"{path} scrolls sideways at 375 px ({width} px)"
    page.set_viewport_size({"width": 1280, "height": 900})


def sign_in(page: Page, email: str) -> None:
    page.goto("/compte/connexion/")
    page.locator("#id_email").fill(email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/connexion/" not in url)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_visitor_page_passes(
    make_page: PageFactory, marie_booked: dict[str, int], language: str
) -> None:
    page = make_page(locale=f"{language}-CA")
    for _name, template in VISITOR_PAGES:
        audit(page, template.format(**marie_booked))


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_signed_in_page_passes(
    make_page: PageFactory, marie_booked: dict[str, int], language: str, cast: Any
) -> None:
    page = make_page(locale=f"{language}-CA")
    sign_in(page, cast.marie.email)
    for _name, template in SIGNED_IN_PAGES:
        audit(page, template.format(**marie_booked))


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_portal_page_passes(
    make_page: PageFactory, marie_booked: dict[str, int], language: str, cast: Any
) -> None:
    marie = cast.marie_self
    letters = expected_letters(last_name_at_birth=marie.last_name, first_name=marie.first_name)
    number = f"{letters}{marie.date_of_birth:%y%m%d}11"
    set_health_card(patient=marie, ramq_number=number, card_sequence_number="01")
    page = make_page(locale=f"{language}-CA")
    staff_sign_in(page, cast.marc)
    page.goto(f"/clinique/{cast.laval.pk}/telephone/")
    for typed in ("12", number):  # the error summary, then the person found
        page.locator("#id_ramq_number").fill(typed)
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_load_state("load")
        assert_accessible(page)
    page.locator("form[action$='/telephone/choisir/'] button").first.click()
    page.wait_for_url(lambda url: "/telephone/creneaux/" in url)
    for _name, template in STAFF_PAGES:
        audit(page, template.format(**marie_booked))


def test_a_missing_page_is_a_readable_404(make_page: PageFactory, db: Any) -> None:
    page = make_page(locale="fr-CA")
    response = page.goto("/creneaux/999999/")
    assert response is not None
    assert response.status == 404
    make_page.problems(page).clear()  # the 404 itself is the point
    assert_accessible(page)


def _names(patterns: list[Any]) -> set[str]:
    found: set[str] = set()
    for entry in patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name in ("admin",) or str(entry.pattern).startswith("api/"):
                continue
            found |= _names(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name:
            found.add(entry.name)
    return found


def test_the_lists_above_cover_every_patient_page() -> None:
    from rdv.web import urls  # noqa: PLC0415 (only this test needs the web URL list)

    audited = {name for name, _ in VISITOR_PAGES + SIGNED_IN_PAGES + STAFF_PAGES}
    missing = _names(list(urls.urlpatterns)) - audited - NOT_PAGES
    assert not missing, f"patient pages missing from the audit: {sorted(missing)}"


def test_a_week_of_results_stays_under_budget(make_page: PageFactory, cast: Any) -> None:
    """The heaviest ordinary page: a full page of results."""
    start = local(2026, 11, 24, 8, 0)
    for index in range(40):
        make_slot(cast.dr_roy, start + timedelta(minutes=30 * index))
    page = make_page(locale="fr-CA")
    audit(page, "/?near=Laval&radius_km=25")
