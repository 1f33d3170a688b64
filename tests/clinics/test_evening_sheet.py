"""The evening email (issue 6): at 18:00 Marc, administrator of GMF Laval, gets a link to
Tuesday's day sheet, prints it from his phone at home, and the clinic could work from
paper on Tuesday. Sophie (receptionist) gets nothing; the Montréal clinic, with nothing
on Tuesday, gets nothing. The link dies at the end of Tuesday, or as soon as Marc is no
longer an administrator; a forged, truncated or re-pointed link is refused, never a 500.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.db import connection
from django.test import Client
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext
from django_tasks_db.models import DBTaskResult

from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.clinics import evening
from rdv.clinics.models import Membership
from rdv.clinics.tasks import schedule_evening_sheets, send_evening_sheets
from rdv.core import clock
from rdv.notifications.delivery import deliver_due
from rdv.notifications.links import make_token as appointment_token
from rdv.notifications.models import Kind, Message, MessageStatus
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.clinics.test_exports import pdf_text
from tests.conftest import Cast, local, make_slot
from tests.factories import UserFactory
from tests.smtp import Inbox, first_link, running_smtp_server

TUESDAY = date(2026, 11, 24)  # the day after the frozen Monday
EVENING = local(2026, 11, 23, 18, 0)


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 (as in tests/notifications)."""
    yield from running_smtp_server(settings)


@pytest.fixture
def tuesday(cast: Cast) -> list[Appointment]:
    """Marie sees Dr Roy on Tuesday at 9:00, Léa the nurse at 10:00; 9:30 is free.
    Montréal has nothing on Tuesday."""
    marie = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0)).pk
    )
    lea = services.book_appointment(
        user=cast.marie,
        slot_id=make_slot(cast.nurse_diane, local(2026, 11, 24, 10, 0)).pk,
        patient_id=cast.lea.pk,
    )
    make_slot(cast.dr_roy, local(2026, 11, 24, 9, 30))
    Message.objects.all().delete()  # the patients' confirmations are another story
    return [marie, lea]


def at(moment: datetime) -> Any:
    return clock.frozen_now(moment, all_threads=True)


def sheet_mails() -> list[Message]:
    return list(Message.objects.filter(kind=Kind.DAY_SHEET).order_by("id"))


def link_for(user: User, clinic_id: int, day: date = TUESDAY) -> str:
    """The path of the link the email would carry."""
    return urlsplit(evening.sheet_url(clinic_id=clinic_id, user_id=user.pk, day=day)).path


def browser(language: str = "fr") -> Client:
    """A phone at home: no session at all."""
    return Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE=language)


def in_language(language: str, message: str) -> str:
    """The message as a page in that language shows it (French once the lead's .po has
    it; until then gettext falls back to the English msgid)."""
    with translation.override(language):
        return escape(gettext(message))


# --- Who gets the email, once ----------------------------------------------------------------


def test_each_administrator_of_a_working_clinic_gets_one_email(
    cast: Cast, tuesday: list[Appointment]
) -> None:
    montreal_admin = UserFactory.create(email="admin.mtl@example.test")
    Membership.objects.create(
        user=montreal_admin, clinic=cast.montreal, role=Membership.Role.CLINIC_ADMIN
    )
    gone = UserFactory.create(email="ancien@example.test", is_active=False)
    Membership.objects.create(user=gone, clinic=cast.laval, role=Membership.Role.CLINIC_ADMIN)
    with at(EVENING):
        assert evening.queue_evening_sheets(day=TUESDAY, now=clock.now()) == 1
    [mail] = sheet_mails()
    assert (mail.recipient, mail.address, mail.language) == (cast.marc, cast.marc.email, "fr")
    assert mail.key == f"day_sheet:{cast.laval.pk}:{cast.marc.pk}:2026-11-24"
    assert mail.appointment is None  # about the clinic's day, not one visit


def test_running_twice_the_same_evening_writes_and_sends_nothing_twice(
    cast: Cast, tuesday: list[Appointment], smtp_server: Inbox
) -> None:
    with at(EVENING):
        assert send_evening_sheets.call(TUESDAY.isoformat()) == 1
        assert send_evening_sheets.call(TUESDAY.isoformat()) == 0
        assert deliver_due() == 1
        assert send_evening_sheets.call(TUESDAY.isoformat()) == 0
        assert deliver_due() == 0
    assert [m.status for m in sheet_mails()] == [MessageStatus.SENT]
    assert len(smtp_server.messages) == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_write_one_email(cast: Cast, tuesday: list[Appointment]) -> None:
    runs = 6
    barrier = threading.Barrier(runs)
    written: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            written.append(evening.queue_evening_sheets(day=TUESDAY, now=EVENING))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(written) == [0] * (runs - 1) + [1]
    assert len(sheet_mails()) == 1


def test_a_closed_clinic_or_a_day_already_over_gets_no_email(cast: Cast) -> None:
    with at(EVENING):
        assert evening.queue_evening_sheets(day=TUESDAY, now=clock.now()) == 0  # no slots
    make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))
    with at(local(2026, 11, 25, 0, 1)):
        assert evening.queue_evening_sheets(day=TUESDAY, now=clock.now()) == 0
    assert sheet_mails() == []


def test_an_email_for_someone_demoted_since_is_not_sent(
    cast: Cast, tuesday: list[Appointment], smtp_server: Inbox
) -> None:
    with at(EVENING):
        evening.queue_evening_sheets(day=TUESDAY, now=clock.now())
        Membership.objects.filter(user=cast.marc).update(role=Membership.Role.RECEPTIONIST)
        assert deliver_due() == 0
    assert [m.status for m in sheet_mails()] == [MessageStatus.CANCELLED]
    assert smtp_server.messages == []


def test_an_email_whose_day_is_over_is_not_sent(
    cast: Cast, tuesday: list[Appointment], smtp_server: Inbox
) -> None:
    with at(EVENING):
        evening.queue_evening_sheets(day=TUESDAY, now=clock.now())
    with at(local(2026, 11, 25, 0, 0)):  # the worker was down until Wednesday
        assert deliver_due() == 0
    assert [m.status for m in sheet_mails()] == [MessageStatus.CANCELLED]


# --- The email ---------------------------------------------------------------------------------


def sent_to(user: User, smtp_server: Inbox) -> EmailMessage:
    with at(EVENING):
        evening.queue_evening_sheets(day=TUESDAY, now=clock.now())
        deliver_due()
    return smtp_server.wait_for(user.email)


def body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_email_has_the_date_the_link_and_no_patient_data(
    cast: Cast, tuesday: list[Appointment], smtp_server: Inbox, language: str
) -> None:
    User.objects.filter(pk=cast.marc.pk).update(preferred_language=language)
    message = sent_to(cast.marc, smtp_server)
    text = body(message)
    day = {"fr": "mardi 24 novembre 2026", "en": "Tuesday 24 November 2026"}[language]
    assert day in text
    assert cast.laval.name in str(message["Subject"])
    print_tonight = "Print it tonight: if RDV Santé cannot be reached tomorrow, the clinic "
    print_tonight += "can keep working from paper."
    with translation.override(language):
        assert gettext(print_tonight) in text
    link = first_link(message)
    assert "/feuille-du-jour/" in link
    for secret in ("Marie", "Léa", cast.marie_self.last_name, "555"):
        assert secret not in text
    assert message["From"] == "RDV Santé <ne-pas-repondre@rdvsante.example>"
    html = message.get_body(preferencelist=("html",))
    assert isinstance(html, EmailMessage)
    assert link in str(html.get_content())


def test_a_retried_email_carries_the_same_link(cast: Cast, tuesday: list[Appointment]) -> None:
    first = evening.sheet_url(clinic_id=cast.laval.pk, user_id=cast.marc.pk, day=TUESDAY)
    with at(EVENING + timedelta(hours=2)):
        again = evening.sheet_url(clinic_id=cast.laval.pk, user_id=cast.marc.pk, day=TUESDAY)
    assert first == again


# --- The link ----------------------------------------------------------------------------------


def test_the_link_downloads_the_sheet_and_audits_each_patient_in_marcs_name(
    cast: Cast, tuesday: list[Appointment]
) -> None:
    before = AuditEntry.objects.count()
    with at(EVENING):
        response = browser().get(link_for(cast.marc, cast.laval.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == (
        f'attachment; filename="clinique-{cast.laval.pk}-feuille-du-jour-2026-11-24.pdf"'
    )
    assert response["Cache-Control"] == "no-store"
    assert "noindex" in response["X-Robots-Tag"]
    assert response["Referrer-Policy"] == "no-referrer"
    text = pdf_text(response.content)
    assert "mardi 24 novembre 2026" in text  # Marc reads French
    assert "Roy" in text
    assert "Léa" in text
    entries = AuditEntry.objects.order_by("id")[before:]
    assert sorted(
        entries.values_list("action", "actor_id", "actor_role", "clinic_id", "patient_id")
    ) == sorted(
        ("agenda.export", cast.marc.pk, "clinic_admin", cast.laval.pk, a.patient_id)
        for a in tuesday
    )


def test_the_link_works_until_the_end_of_its_day(cast: Cast, tuesday: list[Appointment]) -> None:
    path = link_for(cast.marc, cast.laval.pk)
    with at(local(2026, 11, 24, 23, 59)):
        assert browser().get(path).status_code == 200
    for language in ("fr", "en"):
        with at(local(2026, 11, 25, 0, 0)):
            response = browser(language).get(path)
        assert response.status_code == 410
        page = response.content.decode()
        assert in_language(language, str(evening.LinkGone.default_message)) in page
        assert f'lang="{language}' in page
        assert response["Cache-Control"] == "no-store"
        assert "noindex" in response["X-Robots-Tag"]


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(role=Membership.Role.RECEPTIONIST),
        lambda m: m.delete(),
        lambda m: User.objects.filter(pk=m.get().user_id).update(is_active=False),
    ],
    ids=["demoted", "removed", "deactivated"],
)
def test_the_link_dies_with_the_administrators_role(
    cast: Cast, tuesday: list[Appointment], change: Any
) -> None:
    path = link_for(cast.marc, cast.laval.pk)
    change(Membership.objects.filter(user=cast.marc, clinic=cast.laval))
    before = AuditEntry.objects.count()
    with at(EVENING):
        response = browser("en").get(path)
    assert response.status_code == 410
    assert "Sign in to the portal to download the day sheet." in response.content.decode()
    assert AuditEntry.objects.count() == before  # no patient was read


def forged(token: str) -> list[str]:
    value, signature = token.rsplit(":", 1)
    clinic_id, user_id, _day = value.split(".")
    return [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # a signature altered
        token[:-10],  # truncated
        f"{value}:",
        value,
        "x" * 300,
        "not-a-token",
        f"{clinic_id}.{user_id}.2026-11-25:{signature}",  # another day
    ]


def test_forged_or_damaged_links_are_404_in_both_languages(
    cast: Cast, tuesday: list[Appointment]
) -> None:
    token = evening.make_token(clinic_id=cast.laval.pk, user_id=cast.marc.pk, day=TUESDAY)
    appointment = tuesday[0]
    others = [
        appointment_token(appointment, "view"),  # a token of another salt
        signing.Signer(salt="rdv.appointment-link.view").sign(
            f"{cast.laval.pk}.{cast.marc.pk}.2026-11-24"
        ),
    ]
    for bad in [*forged(token), *others]:
        for language in ("fr", "en"):
            response = browser(language).get(f"/feuille-du-jour/{bad}/")
            assert response.status_code == 404, bad
            message = "This link does not work. Check that it was copied whole."
            assert in_language(language, message) in response.content.decode()
    assert browser().post(f"/feuille-du-jour/{token}/").status_code == 405


def test_a_laval_link_cannot_be_turned_into_montreals_sheet(
    cast: Cast, tuesday: list[Appointment]
) -> None:
    """Marc administers both clinics: his Laval link, its clinic id swapped, is refused;
    his own Montréal link gives Montréal's sheet, never Laval's patients."""
    Membership.objects.create(user=cast.marc, clinic=cast.montreal, role="clinic_admin")
    montreal_patient = services.book_appointment(
        user=cast.paul, slot_id=make_slot(cast.montreal_doctor, local(2026, 11, 24, 9, 0)).pk
    )
    token = evening.make_token(clinic_id=cast.laval.pk, user_id=cast.marc.pk, day=TUESDAY)
    value, signature = token.rsplit(":", 1)
    swapped = value.replace(f"{cast.laval.pk}.", f"{cast.montreal.pk}.", 1)
    assert browser().get(f"/feuille-du-jour/{swapped}:{signature}/").status_code == 404
    # Karim (Montréal receptionist) reusing Marc's signature for himself: refused too.
    karim = value.replace(f".{cast.marc.pk}.", f".{cast.karim.pk}.", 1)
    assert browser().get(f"/feuille-du-jour/{karim}:{signature}/").status_code == 404
    # Karim's own genuine link: he is no administrator, so it is dead.
    karims = link_for(cast.karim, cast.montreal.pk)
    assert browser().get(karims).status_code == 410

    with at(EVENING):
        response = browser().get(link_for(cast.marc, cast.montreal.pk))
    assert response.status_code == 200
    assert f"clinique-{cast.montreal.pk}-" in response["Content-Disposition"]
    text = pdf_text(response.content)
    assert cast.montreal.name in text
    assert "Roy" not in text
    assert "Léa" not in text
    exported = AuditEntry.objects.filter(action="agenda.export", actor_id=cast.marc.pk)
    assert set(exported.values_list("clinic_id", "patient_id")) == {
        (cast.montreal.pk, montreal_patient.patient_id)
    }


# --- The schedule ------------------------------------------------------------------------------


def queued() -> list[DBTaskResult[Any, Any]]:
    return list(
        DBTaskResult.objects.filter(task_path=send_evening_sheets.module_path, status="READY")
    )


def test_one_run_is_kept_queued_for_1800_with_the_next_day(cast: Cast) -> None:
    schedule_evening_sheets()
    schedule_evening_sheets()
    [run] = queued()
    assert run.run_after == EVENING
    assert run.args_kwargs["args"] == ["2026-11-24"]


def test_after_1800_the_next_run_is_tomorrow_evening_across_the_time_change(db: Any) -> None:
    # Saturday 31 October 2026, 18:00 EDT; Sunday 1 November is the change to EST.
    with at(local(2026, 10, 31, 18, 0) + timedelta(seconds=1)):
        schedule_evening_sheets()
    [run] = queued()
    assert run.run_after == local(2026, 11, 1, 18, 0)
    assert run.args_kwargs["args"] == ["2026-11-02"]


def test_a_late_run_still_sends_the_day_it_was_queued_for(
    cast: Cast, tuesday: list[Appointment]
) -> None:
    """The worker was down at 18:00 and gets to the run at 00:30: the mail is still about
    Tuesday (its argument), not Wednesday."""
    with at(local(2026, 11, 24, 0, 30)):
        assert send_evening_sheets.call(TUESDAY.isoformat()) == 1
    [mail] = sheet_mails()
    assert mail.key.endswith(":2026-11-24")
