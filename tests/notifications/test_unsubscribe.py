"""One-click unsubscribe from reminders (RFC 8058): the reminder email names a signed link;
a cookie-less POST to it turns the account's reminders off and withdraws the waiting ones;
opening it changes nothing; a tampered, expired or foreign token is a 404."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from rdv.accounts.models import User
from rdv.accounts.privacy import delete_account
from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.notifications.delivery import claim_due, deliver_due, deliver_one
from rdv.notifications.links import UNSUBSCRIBE_DAYS, make_token, make_unsubscribe_token
from rdv.notifications.models import Kind, Message, MessageStatus
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import PASSWORD, Cast, local, make_slot
from tests.smtp import Inbox

ONE_CLICK = "List-Unsubscribe=One-Click"


def one_click(path: str) -> Any:
    """What a mail provider sends: no cookie, no CSRF token, just the RFC 8058 body."""
    return Client(enforce_csrf_checks=True).post(
        path, ONE_CLICK, content_type="application/x-www-form-urlencoded"
    )


def unsubscribe_path(user: User) -> str:
    return f"/desabonnement/{make_unsubscribe_token(user)}/"


def book(user: User, day: int, hour: int, cast: Cast, **extra: Any) -> Appointment:
    slot = make_slot(cast.dr_roy, local(2026, 11, day, hour, 0))
    return services.book_appointment(user=user, slot_id=slot.pk, **extra)


def statuses(user: User, kind: str) -> list[str]:
    found = Message.objects.filter(recipient=user, kind=kind)
    return sorted(found.values_list("status", flat=True))


def without_csrf(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


def preference_entries(user: User) -> int:
    return AuditEntry.objects.filter(action="account.preferences", object_id=str(user.pk)).count()


def assert_nothing_changed(cast: Cast) -> None:
    cast.marie.refresh_from_db()
    assert cast.marie.reminders is True
    assert set(statuses(cast.marie, Kind.REMINDER)) == {MessageStatus.PENDING}
    assert preference_entries(cast.marie) == 0


@pytest.fixture
def marie_booked(cast: Cast) -> Appointment:
    """Marie's visit on Monday 30 November at 9:00: a confirmation and two reminders."""
    return book(cast.marie, 30, 9, cast)


def test_a_reminder_email_offers_one_click_unsubscribe_that_works(
    cast: Cast, marie_booked: Appointment, smtp_server: Inbox, settings: Any
) -> None:
    with clock.frozen_now(local(2026, 11, 27, 9, 30), all_threads=True):
        assert deliver_due() == 2  # the confirmation and the 3-day reminder
    confirmation, reminder = smtp_server.messages
    assert confirmation["List-Unsubscribe"] is None  # a confirmation is not "list" mail
    assert reminder["List-Unsubscribe-Post"] == ONE_CLICK
    header = str(reminder["List-Unsubscribe"]).strip()  # folded onto its own line
    assert header.startswith(f"<{settings.SITE_URL}/desabonnement/")
    assert header.endswith(">")
    url = header[1:-1]
    text = reminder.get_body(preferencelist=("plain",))
    html = reminder.get_body(preferencelist=("html",))
    assert text is not None
    assert url in text.get_content()  # also in the footer
    assert html is not None
    assert f'href="{url}"' in html.get_content()

    answer = one_click(url.removeprefix(settings.SITE_URL))

    assert answer.status_code == 200
    cast.marie.refresh_from_db()
    assert cast.marie.reminders is False
    assert statuses(cast.marie, Kind.REMINDER) == [MessageStatus.CANCELLED, MessageStatus.SENT]


def test_a_cookieless_one_click_post_stops_only_this_accounts_reminders(
    cast: Cast, marie_booked: Appointment
) -> None:
    lea_visit = book(cast.marie, 30, 10, cast, patient_id=cast.lea.pk)
    book(cast.paul, 30, 11, cast)

    answer = one_click(unsubscribe_path(cast.marie))

    assert answer.status_code == 200
    assert answer["Cache-Control"] == "no-store"
    assert answer["Referrer-Policy"] == "no-referrer"
    cast.marie.refresh_from_db()
    assert cast.marie.reminders is False
    withdrawn = Message.objects.filter(recipient=cast.marie, kind=Kind.REMINDER)
    assert {m.appointment_id for m in withdrawn} == {marie_booked.pk, lea_visit.pk}
    assert all(m.status == MessageStatus.CANCELLED and m.lease_until is None for m in withdrawn)
    # Her booking confirmations still go out; Paul keeps his reminders.
    assert statuses(cast.marie, Kind.BOOKED) == [MessageStatus.PENDING] * 2
    assert statuses(cast.paul, Kind.REMINDER) == [MessageStatus.PENDING] * 2
    assert User.objects.get(pk=cast.paul.pk).reminders is True
    entry = AuditEntry.objects.get(action="account.preferences")
    assert (entry.actor_id, entry.actor_role, entry.object_type, entry.object_id) == (
        cast.marie.pk,
        "patient-link",
        "account",
        str(cast.marie.pk),
    )


def test_unsubscribing_twice_answers_the_same_and_writes_nothing_more(
    cast: Cast, marie_booked: Appointment
) -> None:
    path = unsubscribe_path(cast.marie)  # one link, clicked twice
    first = one_click(path)
    again = one_click(path)
    assert (first.status_code, again.status_code) == (200, 200)
    assert without_csrf(first.text) == without_csrf(again.text)
    assert 'class="message success"' in again.text
    assert preference_entries(cast.marie) == 1


def test_after_unsubscribing_a_new_booking_is_confirmed_but_not_reminded(
    cast: Cast, marie_booked: Appointment
) -> None:
    one_click(unsubscribe_path(cast.marie))
    later = book(cast.marie, 30, 14, cast)
    kinds = list(Message.objects.filter(appointment=later).values_list("kind", flat=True))
    assert kinds == [Kind.BOOKED]


def test_a_reminder_the_worker_already_claimed_is_not_sent_after_unsubscribing(
    cast: Cast, marie_booked: Appointment
) -> None:
    with clock.frozen_now(local(2026, 11, 27, 9, 30), all_threads=True):
        claimed = claim_due(now=clock.now(), limit=10)
        one_click(unsubscribe_path(cast.marie))
        sent = [deliver_one(pk) for pk in claimed]
    assert sent == [1, 0]  # the confirmation goes, the reminder does not
    assert statuses(cast.marie, Kind.REMINDER) == [MessageStatus.CANCELLED] * 2


def test_opening_the_link_changes_nothing(cast: Cast, marie_booked: Appointment) -> None:
    page = Client().get(unsubscribe_path(cast.marie))
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    assert page["Referrer-Policy"] == "no-referrer"
    assert 'method="post"' in page.text
    assert_nothing_changed(cast)


def test_the_pages_own_button_works_from_a_browser_session(
    cast: Cast, marie_booked: Appointment
) -> None:
    browser = Client(enforce_csrf_checks=True)
    path = unsubscribe_path(cast.marie)
    page = browser.get(path)
    token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    assert browser.post(path, {"csrfmiddlewaretoken": token}).status_code == 200
    cast.marie.refresh_from_db()
    assert cast.marie.reminders is False


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token, other: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature
        lambda token, other: f"{other}:" + token.split(":", 1)[1],  # another account
        lambda token, other: "x",
        lambda token, other: "9" * 5000,
        lambda token, other: token + ":" + token,
        lambda token, other: "%00%FF%C3%28:…",
    ],
)
def test_a_tampered_link_is_refused_and_changes_nothing(
    cast: Cast, marie_booked: Appointment, mangle: Any
) -> None:
    token = mangle(make_unsubscribe_token(cast.marie), cast.paul.pk)
    assert one_click(f"/desabonnement/{token}/").status_code == 404
    assert Client().get(f"/desabonnement/{token}/").status_code == 404
    assert_nothing_changed(cast)


def test_a_link_expires(
    cast: Cast, marie_booked: Appointment, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = unsubscribe_path(cast.marie)
    made = time.time()
    nearly = made + timedelta(days=UNSUBSCRIBE_DAYS, hours=-1).total_seconds()
    monkeypatch.setattr("django.core.signing.time.time", lambda: nearly)
    assert Client().get(path).status_code == 200  # still good just before
    expired = made + timedelta(days=UNSUBSCRIBE_DAYS, hours=1).total_seconds()
    monkeypatch.setattr("django.core.signing.time.time", lambda: expired)
    assert one_click(path).status_code == 404
    assert_nothing_changed(cast)


def test_an_appointment_link_is_not_an_unsubscribe_link_nor_the_reverse(
    cast: Cast, marie_booked: Appointment
) -> None:
    for purpose in ("view", "confirm", "cancel"):
        token = make_token(marie_booked, purpose)
        assert one_click(f"/desabonnement/{token}/").status_code == 404
    unsubscribe = make_unsubscribe_token(cast.marie)
    assert Client().post(f"/r/cancel/{unsubscribe}/").status_code == 404
    assert_nothing_changed(cast)


def test_the_link_of_a_closed_account_is_refused(cast: Cast) -> None:
    path = unsubscribe_path(cast.paul)
    delete_account(cast.paul, PASSWORD)
    assert one_click(path).status_code == 404
    assert preference_entries(cast.paul) == 0


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_not_allowed(cast: Cast, method: str) -> None:
    answer = getattr(Client(), method)(unsubscribe_path(cast.marie))
    assert answer.status_code == 405
    cast.marie.refresh_from_db()
    assert cast.marie.reminders is True


@pytest.mark.rate_limits
def test_posting_is_rate_limited(cast: Cast, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "search": "2/m"}
    path = unsubscribe_path(cast.marie)
    answers = [one_click(path).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
