"""The clinic's sender details (issue 6): GMF Laval's messages to its patients go out
under its sender name beside our own address, with its Reply-To when it has one, through
a real SMTP server; account emails and messages to the clinic itself stay ours. A text
message names the clinic by its sender name too. A name that could inject a header never
reaches one, even if it got into the database some other way than the settings page.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from rdv.accounts.models import User
from rdv.clinics.models import Clinic
from rdv.clinics.sender import sender_name
from rdv.core import clock
from rdv.notifications import account_mail
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Kind, Message
from rdv.notifications.services import tell_clinic_of_failure
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot
from tests.smtp import Inbox

OUR_ADDRESS = "ne-pas-repondre@rdvsante.example"


def set_sender(clinic: Clinic, name: str = "", reply_to: str = "") -> None:
    Clinic.objects.filter(pk=clinic.pk).update(sender_name=name, reply_to_email=reply_to)


def book(cast: Cast) -> Appointment:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    return services.book_appointment(user=cast.marie, slot_id=slot.pk)


def confirmation(cast: Cast, smtp_server: Inbox) -> EmailMessage:
    book(cast)
    deliver_due()
    return smtp_server.wait_for(cast.marie.email)


def test_the_confirmation_comes_from_the_clinics_sender_name_with_its_reply_to(
    cast: Cast, smtp_server: Inbox
) -> None:
    set_sender(cast.laval, "Clinique Émile-Roy, GMF", "accueil@gmf-laval.example")
    message = confirmation(cast, smtp_server)
    assert parseaddr(str(message["From"])) == ("Clinique Émile-Roy, GMF", OUR_ADDRESS)
    assert str(message["Reply-To"]) == "accueil@gmf-laval.example"
    # On the wire the accented name is RFC 2047-encoded, never raw 8-bit in the header.
    [wire] = [value for name, value in message.raw_items() if name == "From"]
    assert "=?utf-8?" in wire.lower()
    assert f"<{OUR_ADDRESS}>" in wire
    assert wire.isascii()


def test_without_sender_details_the_clinics_name_and_no_reply_to(
    cast: Cast, smtp_server: Inbox
) -> None:
    message = confirmation(cast, smtp_server)
    assert parseaddr(str(message["From"])) == ("GMF Laval", OUR_ADDRESS)
    assert message["Reply-To"] is None


def test_reminders_cancellations_and_moves_carry_them_too(cast: Cast, smtp_server: Inbox) -> None:
    set_sender(cast.laval, "GMF des Mille-Îles", "accueil@gmf-laval.example")
    appointment = book(cast)
    with clock.frozen_now(local(2026, 11, 27, 9, 0), all_threads=True):
        deliver_due()  # the confirmation, and the first reminder now due
        later = make_slot(cast.dr_roy, local(2026, 12, 2, 14, 0))
        services.reschedule_appointment(
            user=cast.marie, appointment_id=appointment.pk, new_slot_id=later.pk
        )
        services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
        deliver_due()
    sent = Message.objects.filter(status="sent")
    assert sorted(sent.values_list("kind", flat=True)) == sorted(
        [Kind.BOOKED, Kind.REMINDER, Kind.MOVED, Kind.CANCELLED]
    )
    received = smtp_server.messages
    assert len(received) == 4
    for message in received:
        assert parseaddr(str(message["From"])) == ("GMF des Mille-Îles", OUR_ADDRESS)
        assert str(message["Reply-To"]) == "accueil@gmf-laval.example"


def test_account_emails_and_notices_to_the_clinic_stay_ours(
    cast: Cast, smtp_server: Inbox, settings: Any
) -> None:
    set_sender(cast.laval, "GMF des Mille-Îles", "accueil@gmf-laval.example")
    account_mail.queue(cast.paul, kind=Kind.EMAIL_CODE, subject="Code", text="123456")
    appointment = book(cast)
    failed = Message.objects.get(appointment=appointment, kind=Kind.BOOKED)
    tell_clinic_of_failure(failed, now=clock.now())  # Marc is told, by us
    deliver_due()
    for to in (cast.paul.email, cast.marc.email):
        message = smtp_server.wait_for(to)
        assert str(message["From"]) == settings.DEFAULT_FROM_EMAIL == f"RDV Santé <{OUR_ADDRESS}>"
        assert message["Reply-To"] is None


def test_a_name_that_slipped_into_the_database_cannot_inject_a_header(
    cast: Cast, smtp_server: Inbox
) -> None:
    """Written behind the settings page's back (admin site, import): the line break and
    the address-like characters are dropped at sending time, no Bcc appears."""
    set_sender(cast.laval, "GMF\r\nBcc: evil@attacker.example <x@y>", "a\r\nb@c")
    message = confirmation(cast, smtp_server)
    assert message["Bcc"] is None
    assert parseaddr(str(message["From"])) == ("GMF Bcc: evil attacker.example x y", OUR_ADDRESS)
    assert message["Reply-To"] is None
    assert len(smtp_server.messages) == 1
    assert [r.lower() for r in smtp_server._received[0].recipients] == [cast.marie.email]


def test_the_sender_name_falls_back_to_the_clinics_name(cast: Cast) -> None:
    set_sender(cast.laval, "   ")
    cast.laval.refresh_from_db()
    assert sender_name(cast.laval) == "GMF Laval"
    set_sender(cast.laval, "\u202e<@>")  # nothing printable left
    cast.laval.refresh_from_db()
    assert sender_name(cast.laval) == "GMF Laval"


def test_a_text_message_names_the_clinic_by_its_sender_name(
    cast: Cast, settings: Any, tmp_path: Path
) -> None:
    settings.SMS_BACKEND = "file"
    settings.SMS_FILE_PATH = str(tmp_path / "sms.jsonl")
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cast.marie_self.phone = "+15145550123"
    cast.marie_self.save(update_fields=["phone"])
    User.objects.filter(pk=cast.marie.pk).update(notify_by_sms=True, reminders=False)
    set_sender(cast.laval, "GMF Mille-Îles")
    book(cast)
    with clock.frozen_now(local(2026, 11, 23, 9, 0), all_threads=True):
        deliver_due()
    [sms] = [json.loads(line) for line in Path(settings.SMS_FILE_PATH).read_text().splitlines()]
    assert sms["to"] == "+15145550123"
    assert "GMF Mille-Îles." in sms["body"]
    assert "GMF Laval" not in sms["body"]
