"""Text messages through Twilio's Messages API, tested at the HTTP boundary: a local server
answers with the shapes Twilio documents; its signed callbacks come back to our webhooks.

https://www.twilio.com/docs/messaging/api/message-resource
https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.core import mail
from django.test import Client

from rdv.accounts.models import User
from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Attempt, Channel, Kind, Message, MessageStatus
from rdv.notifications.webhooks import twilio_signature
from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot

SID = "AC" + "0" * 32
TOKEN = "test-auth-token-not-a-secret"
SITE = "https://rdv.example"
MARIE_PHONE = "+14505550142"


@dataclass
class FakeTwilio:
    """Answers POST /2010-04-01/Accounts/{sid}/Messages.json with the next scripted
    (status, JSON body), and keeps every request it received."""

    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""


def created(sid: str) -> tuple[int, dict[str, Any]]:
    # The documented 201 body, trimmed to the fields a client reads.
    return 201, {
        "sid": sid,
        "account_sid": SID,
        "status": "queued",
        "to": MARIE_PHONE,
        "from": "+15145550000",
        "body": "…",
        "error_code": None,
        "error_message": None,
    }


def refused(status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
    # Twilio's documented error body.
    return status, {"code": code, "message": message, "more_info": "", "status": status}


@pytest.fixture
def twilio(settings: Any) -> Iterator[FakeTwilio]:
    fake = FakeTwilio()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            fake.received.append(
                {
                    "path": self.path,
                    "authorization": self.headers.get("Authorization", ""),
                    "form": parse_qs(self.rfile.read(length).decode()),
                }
            )
            status, body = fake.answers.pop(0) if fake.answers else refused(500, 20500, "?")
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_API_BASE = fake.url
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = "+15145550000"
    settings.TWILIO_STATUS_CALLBACK = f"{SITE}/webhooks/twilio/status/"
    settings.SITE_URL = SITE
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def marie_by_sms(cast: Cast) -> User:
    cast.marie_self.phone = MARIE_PHONE
    cast.marie_self.save(update_fields=["phone"])
    User.objects.filter(pk=cast.marie.pk).update(notify_by_sms=True, reminders=False)
    return User.objects.get(pk=cast.marie.pk)


def book(cast: Cast, user: User) -> Message:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=user, slot_id=slot.pk)
    return Message.objects.get(appointment=appointment, kind=Kind.BOOKED, channel=Channel.SMS)


def test_a_failed_send_is_retried_and_the_request_has_twilios_shape(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User
) -> None:
    twilio.answers = [refused(503, 20503, "Service unavailable"), created("SM" + "1" * 32)]
    message = book(cast, marie_by_sms)
    deliver_due()
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    with clock.frozen_now(message.due_at, all_threads=True):
        deliver_due()
    message.refresh_from_db()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, "SM" + "1" * 32)
    assert list(Attempt.objects.filter(message=message).values_list("ok", flat=True)) == [
        False,
        True,
    ]
    request = twilio.received[-1]
    assert request["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert (
        request["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    form = request["form"]
    assert form["To"] == [MARIE_PHONE]
    assert form["From"] == ["+15145550000"]
    assert form["StatusCallback"] == [f"{SITE}/webhooks/twilio/status/"]
    assert "30 novembre 09:00" in form["Body"][0]
    assert "ARRET" in form["Body"][0]


def test_an_invalid_number_fails_at_once(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User
) -> None:
    twilio.answers = [refused(400, 21211, "The 'To' number is not a valid phone number.")]
    message = book(cast, marie_by_sms)
    deliver_due()
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert "21211" in message.last_error


def test_a_number_that_answered_stop_gets_no_more_texts(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User
) -> None:
    twilio.answers = [refused(400, 21610, "Attempt to send to unsubscribed recipient")]
    book(cast, marie_by_sms)
    deliver_due()
    marie = User.objects.get(pk=cast.marie.pk)
    assert (marie.notify_by_sms, marie.notify_by_email) == (False, True)


def signed_post(path: str, data: dict[str, str], *, signature: str | None = None) -> Any:
    expected = twilio_signature(SITE + path, {k: [v] for k, v in data.items()})
    return Client().post(path, data, headers={"X-Twilio-Signature": signature or expected})


def test_a_signed_status_callback_is_recorded(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User
) -> None:
    twilio.answers = [created("SM" + "2" * 32)]
    message = book(cast, marie_by_sms)
    deliver_due()
    callback = {
        "MessageSid": "SM" + "2" * 32,
        "MessageStatus": "delivered",
        "AccountSid": SID,
        "To": MARIE_PHONE,
    }
    assert signed_post("/webhooks/twilio/status/", callback).status_code == 204
    message.refresh_from_db()
    assert message.provider_status == "delivered"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda data, sig: ({**data, "MessageStatus": "failed"}, sig),  # body changed
        lambda data, sig: (data, sig[:-2] + "xx"),  # signature changed
        lambda data, sig: (data, ""),  # no signature
    ],
)
def test_a_tampered_status_callback_is_refused(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User, tamper: Any
) -> None:
    twilio.answers = [created("SM" + "3" * 32)]
    message = book(cast, marie_by_sms)
    deliver_due()
    data = {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered", "AccountSid": SID}
    good = twilio_signature(SITE + "/webhooks/twilio/status/", {k: [v] for k, v in data.items()})
    sent, signature = tamper(data, good)
    response = Client().post(
        "/webhooks/twilio/status/", sent, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.provider_status == ""


@pytest.mark.parametrize("word", ["STOP", "arret", "Arrêt", "ARRET."])
def test_answering_stop_or_arret_turns_texts_off(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User, word: str
) -> None:
    twilio.answers = [created("SM" + "4" * 32)]
    book(cast, marie_by_sms)
    deliver_due()
    answer = signed_post(
        "/webhooks/twilio/inbound/", {"From": MARIE_PHONE, "Body": word, "AccountSid": SID}
    )
    assert answer.status_code == 200
    assert not User.objects.get(pk=cast.marie.pk).notify_by_sms
    assert AuditEntry.objects.filter(
        action="account.preferences", actor_role="system", object_id=str(cast.marie.pk)
    ).exists()


def test_another_answer_changes_nothing(cast: Cast, twilio: FakeTwilio, marie_by_sms: User) -> None:
    twilio.answers = [created("SM" + "5" * 32)]
    book(cast, marie_by_sms)
    deliver_due()
    signed_post("/webhooks/twilio/inbound/", {"From": MARIE_PHONE, "Body": "Merci!"})
    assert User.objects.get(pk=cast.marie.pk).notify_by_sms


def test_a_message_that_fails_for_good_is_reported_to_the_clinic_admins(
    cast: Cast, twilio: FakeTwilio, marie_by_sms: User
) -> None:
    twilio.answers = [refused(400, 21211, "The 'To' number is not a valid phone number.")]
    book(cast, marie_by_sms)
    deliver_due()  # Marie's email goes out; her text fails for good; the admins are told
    deliver_due()
    to_clinic = [m for m in mail.outbox if m.to == [cast.marc.email]]
    assert len(to_clinic) == 1
    assert "Marie" in str(to_clinic[0].body)
    assert not to_clinic[0].attachments
    assert "/r/" not in str(to_clinic[0].body)  # no patient's one-click links for staff
    assert cast.sophie.email not in [m.to[0] for m in mail.outbox]  # receptionists: no
