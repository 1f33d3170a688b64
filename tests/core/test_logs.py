"""Logs: one JSON object per line, each with its request's id, and nothing in them that
says who a patient is or why they consult.

The production handler (settings.LOGGING: the request-id filter and the JSON formatter)
is attached to the root logger while a patient signs up, signs in, books and is sent
their confirmation; then the captured lines are searched for what identifies her.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from rdv.accounts.models import User
from rdv.accounts.registration import TERMS_VERSION
from rdv.core import logs
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Channel, Message, MessageStatus
from rdv.patients.models import Patient
from tests.conftest import PASSWORD, Cast, local, make_slot, sent_mail

pytestmark = pytest.mark.django_db


class Captured:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == "rdv.access"]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The production handler, writing into memory, on the root logger at INFO."""
    capture = Captured()
    handler = logging.StreamHandler(capture.stream)
    handler.addFilter(logs.RequestIdFilter())
    handler.setFormatter(logs.JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield capture
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_a_record_is_one_json_line_with_time_level_logger_and_exception(
    captured: Captured,
) -> None:
    logger = logging.getLogger("rdv.test")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        logger.exception("sweep %s failed", 42, extra={"attempt": 3, "obj": object()})
    (line,) = captured.text.splitlines()  # the traceback's lines stay inside the object
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "rdv.test"
    assert entry["message"] == "sweep 42 failed"
    assert entry["request_id"] == "-"  # not during a request
    assert entry["attempt"] == 3
    assert "obj" not in entry  # objects are never written out through their repr
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom\nsecond line" in entry["exception"]
    logged_at = datetime.fromisoformat(entry["time"])
    assert logged_at.utcoffset() == UTC.utcoffset(None)
    assert abs((datetime.now(UTC) - logged_at).total_seconds()) < 3600


def test_each_request_has_one_access_line_with_its_route_and_id(
    cast: Cast, captured: Captured
) -> None:
    response = Client().get(
        "/r/cancel/s3cr3t-one-click-token/?next=Tremblay", headers={"X-Request-Id": "lb-7f3a.1"}
    )
    assert response.status_code == 404
    assert response["X-Request-Id"] == "lb-7f3a.1"
    (line,) = captured.access()
    assert line["message"].startswith("GET /r/<str:purpose>/<str:token>/ 404 ")
    assert (line["method"], line["route"], line["status"]) == (
        "GET",
        "/r/<str:purpose>/<str:token>/",
        404,
    )
    assert isinstance(line["duration_ms"], float)
    assert line["request_id"] == "lb-7f3a.1"
    assert "s3cr3t" not in captured.text
    assert "Tremblay" not in captured.text


def test_a_request_id_that_is_not_plain_is_replaced(cast: Cast, captured: Captured) -> None:
    response = Client().get("/", headers={"X-Request-Id": 'x" forged\nline'})
    new_id = response["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    assert [line["request_id"] for line in captured.access()] == [new_id]
    assert "forged" not in captured.text


def test_probes_are_counted_but_not_logged_unless_they_fail(captured: Captured) -> None:
    Client().get("/healthz")
    Client().get("/metrics")  # no token configured: 404, logged
    assert [line["route"] for line in captured.access()] == ["/metrics"]


def test_django_s_not_found_record_names_the_route_not_the_address(captured: Captured) -> None:
    Client().get("/compte/Tremblay-Nadia/")
    warnings = [line for line in captured.lines() if line["logger"] == "django.request"]
    assert [line["message"] for line in warnings] == ["Not Found: unmatched"]
    assert warnings[0]["status_code"] == 404
    assert "Tremblay" not in captured.text


# --- A patient's whole visit leaves nothing of her in the log ----------------------------

NADIA = {
    "first_name": "Nadia",
    "last_name": "Tremblay",
    "date_of_birth": "1990-04-12",
    "email": "nadia.tremblay@example.test",
}
PHONE = "450 555-0199"
RAMQ = "TREN 9004 1211"
REASON = "Douleur thoracique depuis mardi"
IDENTIFYING = [
    "Nadia",
    "Tremblay",
    "nadia.tremblay",
    "1990-04-12",
    "555-0199",
    "5550199",
    "TREN",
    "90041211",
    "Douleur",
    "thoracique",
]


def code_from(message: mail.EmailMessage) -> str:
    found = re.search(r"\b(\d{6})\b", str(message.body))
    assert found is not None
    return found.group(1)


def test_signing_up_in_booking_and_being_told_leaves_no_personal_data_in_the_log(
    cast: Cast,
    captured: Captured,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings.SMS_BACKEND = "console"
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        signed_up = client.post(
            "/compte/inscription/",
            {
                **NADIA,
                "password": PASSWORD,
                "accept_terms": "on",
                "terms_version": TERMS_VERSION,
            },
        )
    assert signed_up.status_code == 302
    (code_mail,) = sent_mail()  # the worker sends her the code
    assert client.post("/compte/confirmation/", {"code": code_from(code_mail)}).status_code == 302

    profile = {
        "section": "person",
        "first_name": NADIA["first_name"],
        "last_name": NADIA["last_name"],
        "last_name_at_birth": "",
        "date_of_birth": NADIA["date_of_birth"],
        "phone": PHONE,
        "ramq_number": RAMQ,
        "card_sequence_number": "01",
        "family_doctor": "",
    }
    assert client.post("/compte/profil/", profile).status_code == 302
    preferences = {
        "section": "preferences",
        "preferred_language": "fr",
        "notify_by_email": "on",
        "notify_by_sms": "on",
        "reminders": "on",
    }
    assert client.post("/compte/profil/", preferences).status_code == 302
    nadia = User.objects.get(email=NADIA["email"])
    assert (nadia.notify_by_sms, Patient.objects.get(account=nadia).phone) == (True, "+14505550199")

    client.post("/compte/deconnexion/")
    wrong = {"email": NADIA["email"], "password": "not her password"}
    assert client.post("/compte/connexion/", wrong).status_code == 401
    right = {"email": NADIA["email"], "password": PASSWORD}
    assert client.post("/compte/connexion/", right).status_code == 302

    me = Patient.objects.get(account=nadia)
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/creneaux/{slot.pk}/retenir/", {"patient_id": me.pk})
        booked = client.post(
            "/creneaux/reserver/", {"slot_id": slot.pk, "patient_id": me.pk, "reason": REASON}
        )
    assert booked.status_code == 302
    client.get(f"/?q={NADIA['last_name']}")
    assert deliver_due() >= 2  # her confirmation, by email and by text message
    sent = Message.objects.filter(recipient=nadia, status=MessageStatus.SENT)
    assert set(sent.values_list("channel", flat=True)) == {Channel.EMAIL, Channel.SMS}
    assert "+14505550199" in capsys.readouterr().out  # the console "phone" got the text

    assert len(captured.access()) >= 8  # the log did record the visit
    assert all(line["request_id"] != "-" for line in captured.access())
    found = [word for word in IDENTIFYING if word.lower() in captured.text.lower()]
    assert found == [], captured.text
