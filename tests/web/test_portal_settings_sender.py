"""The settings page's sender details (issue 6): Marc, administrator of GMF Laval, names
the clinic's messages and gives the address replies go to; a name that could inject an
email header, or a bad address, is refused on the page (French and English), with nothing
saved. Sophie (receptionist) may not; Montréal's staff find nothing."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext

from rdv.audit.models import AuditEntry
from rdv.clinics import services as clinics
from rdv.clinics.models import Clinic
from rdv.clinics.queries import staff_context
from rdv.core.errors import PermissionDenied, ValidationError
from tests.conftest import Cast, portal_client

SETTINGS = {
    "cancellation_cutoff_hours": "24",
    "first_reminder_days": "3",
    "second_reminder_days": "1",
}
NAME_REFUSED = "The sender name cannot contain line breaks, control characters, <, > or @."
ADDRESS_REFUSED = "Enter a valid email address, for example accueil@clinique.example."


def url(clinic: Clinic) -> str:
    return f"/clinique/{clinic.pk}/parametres/"


def shown(language: str, message: str) -> str:
    """As a page in that language shows it (the English msgid until the .po has it)."""
    with translation.override(language):
        return escape(gettext(message))


def saved(clinic: Clinic) -> tuple[str, str, int]:
    clinic.refresh_from_db()
    return clinic.sender_name, clinic.reply_to_email, clinic.cancellation_cutoff_hours


def test_marc_names_the_clinics_messages_and_sees_them_again(cast: Cast) -> None:
    client = portal_client(cast.marc)
    response = client.post(
        url(cast.laval),
        {
            **SETTINGS,
            "sender_name": "  Clinique Émile-Roy (GMF)  ",
            "reply_to_email": " accueil@gmf-laval.example ",
        },
    )
    assert response.status_code == 302
    assert saved(cast.laval) == ("Clinique Émile-Roy (GMF)", "accueil@gmf-laval.example", 24)
    page = client.get(url(cast.laval)).content.decode()
    assert 'value="Clinique Émile-Roy (GMF)"' in page
    assert 'value="accueil@gmf-laval.example"' in page
    entry = AuditEntry.objects.filter(action="clinic.settings").get()
    assert (entry.actor_id, entry.clinic_id) == (cast.marc.pk, cast.laval.pk)


def test_emptying_them_goes_back_to_the_clinics_name_and_no_reply_to(cast: Cast) -> None:
    Clinic.objects.filter(pk=cast.laval.pk).update(
        sender_name="Ancien nom", reply_to_email="old@example.test"
    )
    response = portal_client(cast.marc).post(
        url(cast.laval), {**SETTINGS, "sender_name": "", "reply_to_email": ""}
    )
    assert response.status_code == 302
    assert saved(cast.laval) == ("", "", 24)


@pytest.mark.parametrize(
    "name",
    [
        "GMF Laval\r\nBcc: evil@attacker.example",
        "GMF Laval\nX-Injected: 1",
        "GMF\tLaval",
        "GMF <evil@attacker.example>",
        "GMF Laval @ home",
        "GMF \u2028Laval",  # Unicode's line separator
        "GMF \u202eLaval",  # a right-to-left override
    ],
)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_name_that_could_inject_a_header_is_refused(cast: Cast, name: str, language: str) -> None:
    response = portal_client(cast.marc, language).post(
        url(cast.laval),
        {**SETTINGS, "cancellation_cutoff_hours": "12", "sender_name": name},
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert shown(language, NAME_REFUSED) in page
    assert 'id="error-summary"' in page
    assert saved(cast.laval) == ("", "", 24)  # nothing at all, the cut-off neither
    assert not AuditEntry.objects.filter(action="clinic.settings").exists()


@pytest.mark.parametrize(
    "address",
    ["pas-une-adresse", "a@b", "accueil@gmf.example\r\nBcc: x@y.example", '"a\x01b"@gmf.example'],
)
@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_bad_reply_to_address_is_refused(cast: Cast, address: str, language: str) -> None:
    response = portal_client(cast.marc, language).post(
        url(cast.laval), {**SETTINGS, "sender_name": "GMF", "reply_to_email": address}
    )
    assert response.status_code == 422
    assert shown(language, ADDRESS_REFUSED) in response.content.decode()
    assert saved(cast.laval) == ("", "", 24)


def test_a_name_too_long_is_refused_by_the_form(cast: Cast) -> None:
    response = portal_client(cast.marc).post(url(cast.laval), {**SETTINGS, "sender_name": "G" * 81})
    assert response.status_code == 422
    assert "at most 80 characters" in response.content.decode()
    assert saved(cast.laval) == ("", "", 24)


def test_the_service_refuses_what_the_form_lets_through(cast: Cast) -> None:
    ctx = staff_context(cast.marc, cast.laval.pk)
    for change in ({"sender_name": "A\nB"}, {"sender_name": "x" * 81}, {"reply_to_email": "no"}):
        with pytest.raises(ValidationError):
            clinics.update_clinic_settings(
                ctx,
                cancellation_cutoff_hours=0,
                first_reminder_days=0,
                second_reminder_days=0,
                **change,
            )
    assert saved(cast.laval) == ("", "", 24)
    # Left out, the sender details stay as they are.
    Clinic.objects.filter(pk=cast.laval.pk).update(sender_name="GMF des Îles")
    clinics.update_clinic_settings(
        ctx, cancellation_cutoff_hours=12, first_reminder_days=2, second_reminder_days=1
    )
    assert saved(cast.laval) == ("GMF des Îles", "", 12)


def test_a_receptionist_may_not_and_montreal_finds_nothing(cast: Cast) -> None:
    posted = {**SETTINGS, "sender_name": "Pirate"}
    assert portal_client(cast.sophie).post(url(cast.laval), posted).status_code == 403
    assert portal_client(cast.karim).post(url(cast.laval), posted).status_code == 404
    with pytest.raises(PermissionDenied):
        clinics.update_clinic_settings(
            staff_context(cast.sophie, cast.laval.pk),
            cancellation_cutoff_hours=24,
            first_reminder_days=3,
            second_reminder_days=1,
            sender_name="Pirate",
        )
    assert saved(cast.laval) == ("", "", 24)
