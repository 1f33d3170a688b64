"""The outbox: messages written with the change that causes them, sent by the worker to a
real SMTP server, retried with back-off, never sent twice, reminders at the right local
time, text messages deferred out of quiet hours."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from django.db import connection
from icalendar import Calendar

from rdv.accounts.models import User
from rdv.accounts.privacy import delete_account
from rdv.accounts.services import update_preferences
from rdv.core import clock
from rdv.core.errors import SlotUnavailable
from rdv.notifications import services as outbox
from rdv.notifications.delivery import claim_due, deliver_due
from rdv.notifications.models import Attempt, Channel, Kind, Message, MessageStatus
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Slot
from tests.conftest import PASSWORD, Cast, local, make_slot
from tests.smtp import Inbox, free_port


def kinds(**filters: Any) -> list[tuple[str, str, str]]:
    rows = Message.objects.filter(**filters).order_by("due_at", "id")
    return [(m.kind, m.channel, m.status) for m in rows]


def later(**delta: float) -> Any:
    return clock.frozen_now(clock.now() + timedelta(**delta))


# --- Written with the change ---------------------------------------------------------------


def test_a_booking_writes_its_confirmation_and_two_reminders(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    messages = list(Message.objects.filter(appointment=appointment).order_by("due_at"))
    assert [(m.kind, m.channel) for m in messages] == [
        (Kind.BOOKED, Channel.EMAIL),
        (Kind.REMINDER, Channel.EMAIL),
        (Kind.REMINDER, Channel.EMAIL),
    ]
    assert [m.due_at for m in messages[1:]] == [
        local(2026, 11, 27, 9, 0),
        local(2026, 11, 29, 9, 0),
    ]
    assert {m.address for m in messages} == {cast.marie.email}
    assert all(m.status == MessageStatus.PENDING for m in messages)


def test_a_lost_booking_writes_no_message(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    services.book_appointment(user=cast.paul, slot_id=slot.pk)
    with pytest.raises(SlotUnavailable):
        services.book_appointment(user=cast.marie, slot_id=slot.pk)
    assert not Message.objects.filter(recipient=cast.marie).exists()


def test_a_reminder_already_past_is_not_written(cast: Cast) -> None:
    tomorrow = make_slot(cast.dr_roy, local(2026, 11, 24, 7, 0))  # NOW is Monday 08:00
    appointment = services.book_appointment(user=cast.marie, slot_id=tomorrow.pk)
    assert kinds(appointment=appointment) == [(Kind.BOOKED, Channel.EMAIL, "pending")]


def test_the_clinic_chooses_the_reminder_days(cast: Cast) -> None:
    cast.laval.first_reminder_days = 5
    cast.laval.second_reminder_days = 0
    cast.laval.save()
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    reminders = Message.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    assert [m.due_at for m in reminders] == [local(2026, 11, 25, 9, 0)]


def test_reminders_turned_off_are_not_written(cast: Cast) -> None:
    User.objects.filter(pk=cast.marie.pk).update(reminders=False)
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    assert kinds(appointment=appointment) == [(Kind.BOOKED, Channel.EMAIL, "pending")]


@pytest.mark.parametrize(
    ("visit", "now", "reminders_utc"),
    [
        # Autumn 2026: clocks go back on 1 November. 9:00 is 13:00Z before, 14:00Z after.
        (
            local(2026, 11, 3, 9, 0),
            datetime(2026, 10, 20, 12, 0, tzinfo=UTC),
            [datetime(2026, 10, 31, 13, 0, tzinfo=UTC), datetime(2026, 11, 2, 14, 0, tzinfo=UTC)],
        ),
        # Spring 2027: clocks go forward on 14 March. 9:00 is 14:00Z before, 13:00Z after.
        (
            local(2027, 3, 16, 9, 0),
            datetime(2027, 3, 1, 12, 0, tzinfo=UTC),
            [datetime(2027, 3, 13, 14, 0, tzinfo=UTC), datetime(2027, 3, 15, 13, 0, tzinfo=UTC)],
        ),
    ],
)
def test_reminders_keep_the_local_time_across_daylight_saving(
    cast: Cast, visit: datetime, now: datetime, reminders_utc: list[datetime]
) -> None:
    with clock.frozen_now(now, all_threads=True):
        slot = make_slot(cast.dr_roy, visit)
        appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    reminders = Message.objects.filter(appointment=appointment, kind=Kind.REMINDER)
    due = sorted(m.due_at for m in reminders)
    assert due == reminders_utc
    assert {d.astimezone(clock.LOCAL_TZ).time().hour for d in due} == {9}


def test_cancelling_withdraws_the_reminders_and_says_so(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    assert kinds(appointment=appointment, kind=Kind.REMINDER) == [
        (Kind.REMINDER, Channel.EMAIL, "cancelled"),
        (Kind.REMINDER, Channel.EMAIL, "cancelled"),
    ]
    assert Message.objects.filter(appointment=appointment, kind=Kind.CANCELLED).count() == 1


def test_moving_replaces_the_reminders_with_the_new_times(cast: Cast) -> None:
    first = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 12, 2, 14, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=first.pk)
    services.reschedule_appointment(
        user=cast.marie, appointment_id=appointment.pk, new_slot_id=second.pk
    )
    waiting = Message.objects.filter(
        appointment=appointment, kind=Kind.REMINDER, status=MessageStatus.PENDING
    )
    assert sorted(m.due_at for m in waiting) == [
        local(2026, 11, 29, 14, 0),
        local(2026, 12, 1, 14, 0),
    ]
    assert Message.objects.filter(appointment=appointment, kind=Kind.MOVED).count() == 1


# --- Quiet hours ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (local(2026, 11, 24, 8, 0), local(2026, 11, 24, 8, 0)),
        (local(2026, 11, 24, 20, 59), local(2026, 11, 24, 20, 59)),
        (local(2026, 11, 24, 21, 0), local(2026, 11, 25, 8, 0)),
        (local(2026, 11, 24, 23, 30), local(2026, 11, 25, 8, 0)),
        (local(2026, 11, 25, 3, 0), local(2026, 11, 25, 8, 0)),
        (local(2026, 11, 25, 7, 59), local(2026, 11, 25, 8, 0)),
    ],
)
def test_quiet_hours_defer_to_eight_in_the_morning(moment: datetime, expected: datetime) -> None:
    assert outbox.after_quiet_hours(moment) == expected


def test_a_text_message_booked_at_night_goes_out_at_eight(cast: Cast, settings: Any) -> None:
    settings.SMS_BACKEND = "console"
    cast.marie_self.phone = "+14505550142"
    cast.marie_self.save(update_fields=["phone"])
    User.objects.filter(pk=cast.marie.pk).update(notify_by_sms=True)
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    with clock.frozen_now(local(2026, 11, 23, 22, 15), all_threads=True):
        appointment = services.book_appointment(
            user=User.objects.get(pk=cast.marie.pk), slot_id=slot.pk
        )
    sms = Message.objects.get(appointment=appointment, kind=Kind.BOOKED, channel=Channel.SMS)
    email = Message.objects.get(appointment=appointment, kind=Kind.BOOKED, channel=Channel.EMAIL)
    assert email.due_at == local(2026, 11, 23, 22, 15)
    assert sms.due_at == local(2026, 11, 24, 8, 0)
    with clock.frozen_now(local(2026, 11, 24, 7, 59), all_threads=True):
        deliver_due()
    sms.refresh_from_db()
    assert sms.status == MessageStatus.PENDING
    with clock.frozen_now(local(2026, 11, 24, 8, 0), all_threads=True):
        deliver_due()
    sms.refresh_from_db()
    assert (sms.status, sms.sent_at) == (MessageStatus.SENT, local(2026, 11, 24, 8, 0))


# --- Delivery to a real SMTP server ----------------------------------------------------------


def calendar_part(message: EmailMessage) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_content()
            return payload if isinstance(payload, str) else payload.decode()
    pytest.fail("no text/calendar part")


def test_the_confirmation_arrives_with_text_html_and_a_calendar_at_the_right_time(
    cast: Cast, smtp_server: Inbox
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    assert deliver_due() == 1  # the confirmation; the reminders are not due yet
    received = smtp_server.wait_for(cast.marie.email)
    assert received["Subject"] == "Votre rendez-vous est réservé"
    types = {part.get_content_type() for part in received.walk()}
    assert {"text/plain", "text/html", "text/calendar"} <= types
    calendar = Calendar.from_ical(calendar_part(received))
    assert calendar["METHOD"] == "PUBLISH"
    assert [timezone.tz_name for timezone in calendar.timezones] == ["America/Toronto"]
    [event] = calendar.events
    assert event["DTSTART"].params["TZID"] == "America/Toronto"
    assert event.start == local(2026, 11, 30, 9, 0)
    assert event.start.strftime("%H:%M") == "09:00"  # the wall clock in the calendar
    text = received.get_body(preferencelist=("plain",))
    assert text is not None
    assert "lundi 30 novembre 2026, 09:00" in text.get_content()
    sent = Message.objects.get(kind=Kind.BOOKED)
    assert (sent.status, sent.attempts, sent.provider_id) == (
        MessageStatus.SENT,
        1,
        received["Message-ID"],
    )


def test_reminders_go_out_when_due_and_a_cancelled_ones_never(
    cast: Cast, smtp_server: Inbox
) -> None:
    kept = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0)).pk
    )
    dropped = services.book_appointment(
        user=cast.paul, slot_id=make_slot(cast.dr_roy, local(2026, 11, 30, 10, 0)).pk
    )
    services.cancel_appointment(user=cast.paul, appointment_id=dropped.pk)
    with clock.frozen_now(local(2026, 11, 29, 12, 0), all_threads=True):
        deliver_due()
    reminders = [m for m in smtp_server.messages if "Rappel" in str(m["Subject"])]
    assert len(reminders) == 2  # Marie's 3-day and 1-day reminders
    assert all(m["To"] == cast.marie.email for m in reminders)
    assert all(m["List-Unsubscribe"] for m in reminders)
    assert Message.objects.filter(appointment=dropped, status=MessageStatus.SENT).count() == 2
    assert not Message.objects.filter(
        appointment=dropped, kind=Kind.REMINDER, status=MessageStatus.SENT
    ).exists()
    assert Message.objects.filter(appointment=kept, status=MessageStatus.SENT).count() == 3


def test_an_unreachable_mail_server_is_retried_with_back_off_then_given_up(
    cast: Cast, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    slot = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    message = Message.objects.get(kind=Kind.BOOKED)
    start = clock.now()
    delays = []
    for _ in range(3):
        with clock.frozen_now(message.due_at, all_threads=True):
            assert deliver_due() == 0
        message.refresh_from_db()
        delays.append(message.due_at - start)
    assert delays[:2] == [timedelta(seconds=60), timedelta(seconds=60 + 120)]
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 3)
    assert "Connection" in message.last_error or "refused" in message.last_error.lower()
    log = list(Attempt.objects.filter(message=message).values_list("ok", flat=True))
    assert log == [False, False, False]
    with later(days=1):
        assert deliver_due() == 0  # a failed message stays failed


def test_a_claimed_message_is_not_taken_by_another_worker_until_its_lease_ends(
    cast: Cast,
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 24, 9, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    now = clock.now()
    first = claim_due(now=now, limit=10)
    assert len(first) == 1
    assert claim_due(now=now, limit=10) == []
    # The first worker died: after the lease, the message is taken again.
    assert claim_due(now=now + timedelta(minutes=3), limit=10) == first


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_send_each_message_exactly_once(smtp_server: Inbox) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks with SKIP LOCKED: PostgreSQL")
    from tests.factories import PatientFactory, PractitionerFactory, UserFactory  # noqa: PLC0415

    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 24, 9, 0)
    for index in range(30):
        user = UserFactory.create(reminders=False)
        PatientFactory.create(account=user)
        slot = make_slot(practitioner, start + timedelta(minutes=30 * index))
        services.book_appointment(user=user, slot_id=slot.pk)
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            while deliver_due(limit=3):
                pass
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    ids = [str(m["Message-ID"]) for m in smtp_server.messages]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 30
    assert Slot.objects.count() == 30


def test_a_reminder_for_a_time_the_appointment_no_longer_has_is_not_sent(
    cast: Cast, smtp_server: Inbox
) -> None:
    """The worker's own check, behind the withdrawal a move does in its transaction."""
    appointment = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0)).pk
    )
    deliver_due()  # the confirmation
    elsewhere = make_slot(cast.dr_roy, local(2026, 12, 3, 9, 0))
    Appointment.objects.filter(pk=appointment.pk).update(slot=elsewhere)  # no withdrawal
    with clock.frozen_now(local(2026, 11, 29, 12, 0), all_threads=True):
        assert deliver_due() == 0
    assert set(
        Message.objects.filter(appointment=appointment, kind=Kind.REMINDER).values_list(
            "status", flat=True
        )
    ) == {MessageStatus.CANCELLED}
    assert len(smtp_server.messages) == 1


def test_deleting_the_account_stops_its_messages_and_erases_its_addresses(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    delete_account(cast.marie, PASSWORD)
    assert not Message.objects.filter(status=MessageStatus.PENDING).exists()
    assert set(Message.objects.values_list("address", flat=True)) == {""}
    assert not Message.objects.filter(recipient=cast.marie).exists()
    assert deliver_due() == 0


def test_turning_reminders_off_in_the_profile_withdraws_the_waiting_ones(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    update_preferences(
        user=cast.marie, language="fr", notify_by_email=True, notify_by_sms=False, reminders=False
    )
    assert kinds(appointment=appointment, kind=Kind.REMINDER) == [
        (Kind.REMINDER, Channel.EMAIL, "cancelled"),
        (Kind.REMINDER, Channel.EMAIL, "cancelled"),
    ]


def test_a_reminder_is_not_sent_once_its_recipient_no_longer_wants_it(
    cast: Cast, smtp_server: Inbox
) -> None:
    """Checked again when it is due, whatever wrote it before the preference changed."""
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    deliver_due()  # the confirmation
    User.objects.filter(pk=cast.marie.pk).update(reminders=False)
    with clock.frozen_now(local(2026, 11, 27, 9, 0)):
        assert deliver_due() == 0
    assert (Kind.REMINDER, Channel.EMAIL, "cancelled") in kinds(appointment=appointment)
    User.objects.filter(pk=cast.marie.pk).update(
        reminders=True, notify_by_email=False, notify_by_sms=True
    )
    with clock.frozen_now(local(2026, 11, 29, 9, 0)):
        assert deliver_due() == 0
    assert kinds(appointment=appointment, kind=Kind.REMINDER) == [
        (Kind.REMINDER, Channel.EMAIL, "cancelled"),
        (Kind.REMINDER, Channel.EMAIL, "cancelled"),
    ]
    assert len(smtp_server.messages) == 1
