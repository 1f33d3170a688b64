"""Read-only mode: during an incident, patients still search and see their appointments and
clinics still read and export their agenda, while every write is refused, by the middleware
(503 + Retry-After, in French and English at once) and, underneath, by the database itself.

Transactional tests: on PostgreSQL a session's read-only setting applies to transactions
that start after it, so the requests must run in real transactions, not inside the test's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.continuity import readonly
from rdv.continuity.models import ReadOnlySwitch
from rdv.continuity.services import set_read_only
from rdv.notifications.models import Message
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment, Slot
from tests.conftest import PASSWORD, Api, Cast, local, make_slot, on_postgres, portal_client

BANNER_FR = "<strong>Lecture seule</strong> : RDV Santé fonctionne en consultation seulement."
BANNER_EN = "<strong>Read-only</strong>: RDV Santé is in viewing mode."
REFUSAL_FR = "Lecture seule : RDV Santé n’accepte aucune modification pour le moment"
REFUSAL_EN = "Read-only: RDV Santé accepts no changes right now"


@pytest.fixture(autouse=True)
def read_write_after(transactional_db: Any) -> Iterator[None]:
    """Each test starts and ends with the mode off and a read-write session (the flush
    between transactional tests writes)."""
    readonly.forget()
    yield
    readonly.set_session_read_only(False)
    ReadOnlySwitch.objects.filter(pk=1).update(enabled=False)
    readonly.forget()


def turn_on(reason: str = "Incident 42: restoring the database") -> None:
    set_read_only(True, reason=reason, actor=None, role="operator")


def signed_in(user: Any, language: str = "fr") -> Client:
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def has_banner(html: str) -> bool:
    return BANNER_FR in html and BANNER_EN in html


def assert_refused(response: Any) -> None:
    assert response.status_code == 503
    assert response["Retry-After"] == "300"
    text = response.content.decode()
    assert REFUSAL_FR in text
    assert REFUSAL_EN in text


def written() -> tuple[int, int, int]:
    return Appointment.objects.count(), AuditEntry.objects.count(), Message.objects.count()


# --- Turning it on and off ------------------------------------------------------------------


def test_the_environment_turns_it_on_and_the_switch_cannot_lift_it(
    cast: Cast, settings: Any
) -> None:
    assert not readonly.is_active()
    settings.READ_ONLY = True
    assert readonly.is_active()
    set_read_only(False, reason="", actor=None, role="operator")
    assert readonly.is_active()
    page = Client(HTTP_HOST="127.0.0.1").get("/")
    assert page.status_code == 200
    assert has_banner(page.text)
    out = StringIO()
    call_command("read_only", "status", stdout=out)
    assert "read-only mode: on" in out.getvalue()
    assert "READ_ONLY is set in the environment" in out.getvalue()


def test_the_switch_turns_it_on_and_off_and_each_change_is_audited(cast: Cast) -> None:
    assert "read-only-banner" not in Client(HTTP_HOST="127.0.0.1").get("/").text
    turn_on()
    assert readonly.is_active()
    assert has_banner(Client(HTTP_HOST="127.0.0.1").get("/").text)
    set_read_only(False, reason="Restored", actor=cast.marc)
    assert not readonly.is_active()
    assert "read-only-banner" not in Client(HTTP_HOST="127.0.0.1").get("/").text
    entries = list(
        AuditEntry.objects.filter(object_type="read_only_switch")
        .order_by("id")
        .values_list("action", "actor_id", "actor_role")
    )
    assert entries == [("read_only.on", None, "operator"), ("read_only.off", cast.marc.pk, "staff")]
    switch = ReadOnlySwitch.objects.get()
    assert (switch.enabled, switch.reason, switch.changed_by) == (False, "Restored", cast.marc)


def test_the_command_turns_it_on_with_a_reason_and_off_while_it_is_on(cast: Cast) -> None:
    client = signed_in(cast.marie)
    with pytest.raises(Exception, match="Say why"):
        call_command("read_only", "on")
    call_command("read_only", "on", "--reason", "Ransomware drill", stdout=StringIO())
    assert client.get("/mes-rendez-vous/").status_code == 200
    # A request hands its session back read-write.
    assert not readonly.session_read_only()
    # The switch is lifted even from a session that refuses writes.
    readonly.set_session_read_only(True)
    out = StringIO()
    call_command("read_only", "off", stdout=out)
    assert "read-only mode: off" in out.getvalue()
    assert list(
        AuditEntry.objects.filter(object_type="read_only_switch")
        .order_by("id")
        .values_list("action", "actor_role")
    ) == [("read_only.on", "operator"), ("read_only.off", "operator")]
    assert ReadOnlySwitch.objects.get().reason == ""


def test_a_platform_admin_signs_in_and_lifts_it_in_the_admin(cast: Cast) -> None:
    from django_otp.oath import totp  # noqa: PLC0415

    from rdv.accounts.mfa import provision_confirmed_totp  # noqa: PLC0415

    cast.marc.is_staff = True
    cast.marc.save()
    device = provision_confirmed_totp(cast.marc)
    turn_on()
    admin = Client(HTTP_HOST="127.0.0.1")
    signed = admin.post(
        "/gestion-plateforme/login/",
        {
            "username": cast.marc.email,
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": f"{totp(device.bin_key):06d}",
        },
    )
    assert signed.status_code == 302
    form = admin.get("/gestion-plateforme/continuity/readonlyswitch/1/change/")
    assert form.status_code == 200
    assert "Incident 42" in form.text
    lifted = admin.post(
        "/gestion-plateforme/continuity/readonlyswitch/1/change/",
        {"reason": "Database restored"},  # "enabled" unticked
    )
    assert lifted.status_code == 302
    assert not readonly.is_active()
    entry = AuditEntry.objects.filter(action="read_only.off").get()
    assert (entry.actor_id, entry.actor_role) == (cast.marc.pk, "platform_admin")
    assert ReadOnlySwitch.objects.get().reason == "Database restored"


def test_clinic_staff_cannot_see_the_switch(cast: Cast) -> None:
    turn_on()
    staff = portal_client(cast.sophie)
    page = staff.get("/gestion-plateforme/continuity/readonlyswitch/1/change/")
    assert page.status_code == 302  # to the admin's sign-in: not a platform admin
    assert staff.post(
        "/gestion-plateforme/continuity/readonlyswitch/1/change/", {"reason": "x"}
    ).status_code in (302, 403)
    assert readonly.is_active()


# --- Reads keep working -----------------------------------------------------------------


def test_patients_search_and_see_their_appointments_with_the_banner(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    scheduling.book_appointment(user=cast.marie, slot_id=slot.pk)
    make_slot(cast.dr_roy, local(2026, 11, 25, 11, 0))
    marie = signed_in(cast.marie, language="en")
    turn_on()
    search = Client(HTTP_HOST="127.0.0.1").get("/")
    assert search.status_code == 200
    assert has_banner(search.text)
    mine = marie.get("/mes-rendez-vous/")
    assert mine.status_code == 200
    assert has_banner(mine.text)
    assert "Roy" in mine.text
    detail = marie.get(f"/rendez-vous/{Appointment.objects.get().pk}/")
    assert detail.status_code == 200


def test_the_clinic_reads_its_agenda_and_exports_it_with_audit_entries(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 23, 9, 0))
    appointment = scheduling.book_appointment(user=cast.marie, slot_id=slot.pk)
    sophie = portal_client(cast.sophie)
    marc = portal_client(cast.marc)
    turn_on()
    before = AuditEntry.objects.count()
    agenda = sophie.get(f"/clinique/{cast.laval.pk}/agenda/?date=2026-11-23")
    assert agenda.status_code == 200
    assert has_banner(agenda.text)
    assert AuditEntry.objects.filter(
        action="agenda.view", object_id=str(appointment.pk), actor_id=cast.sophie.pk
    ).exists()
    csv = sophie.get(f"/clinique/{cast.laval.pk}/export/agenda.csv?from=2026-11-23")
    assert csv.status_code == 200
    assert "Marie" in csv.content.decode("utf-8-sig")
    assert AuditEntry.objects.filter(action="agenda.export", object_id=str(appointment.pk)).exists()
    assert AuditEntry.objects.count() > before
    # Staff sessions slide on every request: their row is still saved.
    assert sophie.get(f"/clinique/{cast.laval.pk}/exports/").status_code == 200
    everything = marc.get(f"/clinique/{cast.laval.pk}/export/tout.zip")
    assert everything.status_code == 200
    assert everything.getvalue().startswith(b"PK")
    assert AuditEntry.objects.filter(action="clinic.data_export", actor_id=cast.marc.pk).exists()


# --- Writes are refused ---------------------------------------------------------------------


def test_a_web_booking_is_refused_with_nothing_written(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    marie = signed_in(cast.marie, language="en")
    turn_on()
    before = written()
    refused = marie.post(
        "/creneaux/reserver/", {"slot_id": slot.pk, "patient_id": cast.marie_self.pk}
    )
    assert_refused(refused)
    assert has_banner(refused.text)
    assert written() == before
    assert Slot.objects.get(pk=slot.pk).status == "free"


def test_an_api_booking_is_refused_with_the_api_error_shape(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    marie = Api(cast.marie, language="en")
    turn_on()
    before = written()
    refused = marie.post("/appointments", {"slot_id": slot.pk})
    assert refused.status_code == 503
    assert refused["Retry-After"] == "300"
    error = json.loads(refused.content)["error"]
    assert error["code"] == "read_only"
    assert REFUSAL_FR in error["message"]
    assert REFUSAL_EN in error["message"]
    assert written() == before
    # Reads of the API still answer.
    assert marie.get("/me/access-log").status_code == 200


def test_payment_webhooks_are_told_to_come_back(cast: Cast) -> None:
    turn_on()
    answer = Client(HTTP_HOST="127.0.0.1").post(
        "/webhooks/stripe/", "{}", content_type="application/json"
    )
    assert answer.status_code == 503
    assert answer["Retry-After"] == "300"


def test_signing_in_and_out_still_works(cast: Cast) -> None:
    turn_on()
    visitor = Client(HTTP_HOST="127.0.0.1")
    signed = visitor.post("/compte/connexion/", {"email": cast.paul.email, "password": PASSWORD})
    assert signed.status_code == 302
    assert visitor.get("/mes-rendez-vous/").status_code == 200
    assert visitor.post("/compte/deconnexion/").status_code == 302
    assert visitor.get("/mes-rendez-vous/").status_code == 302  # to the sign-in page


# --- The database says no -------------------------------------------------------------------


@pytest.mark.urls("tests.continuity.urls")
def test_the_database_refuses_a_booking_a_view_forgot_to_check(
    cast: Cast, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 11, 0))
    marie = signed_in(cast.marie)
    # The careless view does book when the mode is off.
    assert marie.get(f"/test-only/book-on-get/?slot={first.pk}").status_code == 200
    turn_on()
    before = written()
    with caplog.at_level(logging.WARNING, logger="rdv.continuity.readonly"):
        refused = marie.get(f"/test-only/book-on-get/?slot={second.pk}")
    # A GET passes the middleware's method check: only the database could refuse it.
    assert_refused(refused)
    assert "the database refused a write in read-only mode" in caplog.text
    assert written() == before
    assert Slot.objects.get(pk=second.pk).status == "free"


@pytest.mark.urls("tests.continuity.urls")
def test_the_session_is_read_only_inside_requests_until_the_mode_is_lifted(cast: Cast) -> None:
    on, off = ("on", "off") if on_postgres() else ("1", "0")
    client = Client(HTTP_HOST="127.0.0.1")
    assert client.get("/test-only/session/").text == off
    turn_on()
    assert client.get("/test-only/session/").text == on
    assert client.get("/test-only/session/").text == on
    set_read_only(False, reason="", actor=None, role="operator")
    # The same persistent connection, made read-write again.
    assert client.get("/test-only/session/").text == off
