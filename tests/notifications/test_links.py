"""One-click links: signed, expiring, single-purpose, usable without signing in."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from rdv.audit.models import AuditEntry
from rdv.core import clock
from rdv.notifications.delivery import deliver_due
from rdv.notifications.links import make_token
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus
from tests.conftest import Cast, local, make_slot

ENGLISH = {"accept-language": "en"}


@pytest.fixture
def booked(cast: Cast) -> Appointment:
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    return services.book_appointment(user=cast.marie, slot_id=slot.pk)


def path(appointment: Appointment, purpose: str) -> str:
    return f"/r/{purpose}/{make_token(appointment, purpose)}/"


def test_the_confirmation_email_carries_cancel_and_view_links(
    booked: Appointment, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    deliver_due()
    (message,) = mail.outbox
    links = re.findall(r"https?://\S+/r/(\w+)/(\S+)/", str(message.body))
    assert sorted(purpose for purpose, _ in links) == ["cancel", "view"]
    cancel_token = dict(links)["cancel"]
    page = Client().get(f"/r/cancel/{cancel_token}/")
    assert page.status_code == 200
    assert page["Referrer-Policy"] == "no-referrer"


def test_a_cancel_link_shows_first_then_cancels_once(booked: Appointment, cast: Cast) -> None:
    visitor = Client(headers=ENGLISH)
    shown = visitor.get(path(booked, "cancel"))
    assert "Cancel the appointment" in shown.text
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.BOOKED  # opening the link changes nothing
    done = visitor.post(path(booked, "cancel"))
    assert done.status_code == 200
    assert "Your appointment is cancelled." in done.text
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.CANCELLED
    assert Slot.objects.get(pk=booked.slot_id).status == SlotStatus.FREE
    assert AuditEntry.objects.filter(action="appointment.cancel", actor_role="patient-link")
    again = visitor.post(path(booked, "cancel"))
    assert again.status_code == 409
    assert "already cancelled" in again.text


def test_a_cancel_link_is_refused_after_the_cut_off(booked: Appointment) -> None:
    with clock.frozen_now(local(2026, 11, 29, 10, 0)):  # 23 hours before, cut-off 24
        page = Client(headers=ENGLISH).post(path(booked, "cancel"))
    assert page.status_code == 409
    assert "can no longer be changed online" in page.text
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.BOOKED


def test_a_confirm_link_works_once(booked: Appointment) -> None:
    visitor = Client(headers=ENGLISH)
    assert "Yes, I will come" in visitor.get(path(booked, "confirm")).text
    assert visitor.post(path(booked, "confirm")).status_code == 200
    booked.refresh_from_db()
    assert booked.confirmed_at == clock.now()
    assert visitor.post(path(booked, "confirm")).status_code == 409


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # signature
        lambda token: "9999." + token.split(".", 1)[1],  # another appointment
        lambda token: "x",
    ],
)
def test_a_tampered_link_is_refused(booked: Appointment, mangle: Any) -> None:
    token = make_token(booked, "cancel")
    page = Client().post(f"/r/cancel/{mangle(token)}/")
    assert page.status_code == 404
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.BOOKED


def test_a_view_link_cannot_cancel(booked: Appointment) -> None:
    view_token = make_token(booked, "view")
    assert Client().post(f"/r/cancel/{view_token}/").status_code == 404
    assert Client().post(f"/r/view/{view_token}/").status_code == 200  # shows, does nothing
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.BOOKED
    assert Client().get(f"/r/delete/{view_token}/").status_code == 404


def test_a_link_from_before_a_move_stops_working(booked: Appointment, cast: Cast) -> None:
    old = path(booked, "cancel")
    new_slot = make_slot(cast.dr_roy, local(2026, 12, 1, 9, 0))
    services.reschedule_appointment(
        user=cast.marie, appointment_id=booked.pk, new_slot_id=new_slot.pk
    )
    assert Client().post(old).status_code == 404
    booked.refresh_from_db()
    assert booked.status == AppointmentStatus.BOOKED


def test_a_link_expires(
    booked: Appointment, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    link = path(booked, "view")
    later = time.time() + timedelta(days=settings.APPOINTMENT_LINK_DAYS, hours=1).total_seconds()
    monkeypatch.setattr("django.core.signing.time.time", lambda: later)
    assert Client().get(link).status_code == 404
