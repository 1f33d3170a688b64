"""The clinic's side of an appointment: cancelling with a reason the patient is told, and
recording who came (arrived, fulfilled, no-show, with the missed-appointment notice)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from rdv.audit.models import AuditEntry
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.core.errors import Conflict, NotFound, ValidationError
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Kind, Message, MessageStatus
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, Slot, SlotStatus
from rdv.scheduling.queries import clinic_appointment
from tests.conftest import Api, Cast, local, make_slot
from tests.smtp import Inbox, running_smtp_server


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Inbox]:
    yield from running_smtp_server(settings)


def booked(cast: Cast, *, day: int = 23, hour: int = 10) -> Appointment:
    """Marie's appointment with Dr Roy at Laval (NOW is Monday 23 November, 08:00)."""
    slot = make_slot(cast.dr_roy, local(2026, 11, day, hour, 0))
    return services.book_appointment(user=cast.marie, slot_id=slot.pk, reason="toux")


def messages(appointment: Appointment, kind: str) -> list[str]:
    return list(
        Message.objects.filter(appointment=appointment, kind=kind).values_list("status", flat=True)
    )


def url(cast: Cast, appointment: Appointment, action: str) -> str:
    return f"/clinics/{cast.laval.pk}/appointments/{appointment.pk}/{action}"


# --- Cancelling for the clinic -------------------------------------------------------------


def test_the_clinic_cancels_inside_the_patients_cut_off_and_the_patient_is_told(
    cast: Cast,
) -> None:
    far = booked(cast, day=30)
    assert messages(far, Kind.REMINDER) == [MessageStatus.PENDING] * 2
    with clock.frozen_now(local(2026, 11, 29, 20, 0)):  # inside the patients' 24-hour cut-off
        response = Api(cast.sophie).post(url(cast, far, "cancel"), {"reason": "Dr Roy malade"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancelled_by"] == "clinic"
    far.refresh_from_db()
    assert (far.cancelled_by, far.cancellation_reason) == ("clinic", "Dr Roy malade")
    assert Slot.objects.get(pk=far.slot_id).status == SlotStatus.FREE
    assert messages(far, Kind.CANCELLED) == [MessageStatus.PENDING]
    assert messages(far, Kind.REMINDER) == [MessageStatus.CANCELLED] * 2
    entry = AuditEntry.objects.get(action="appointment.cancel", object_id=str(far.pk))
    assert (entry.actor_id, entry.actor_role, entry.clinic_id) == (
        cast.sophie.pk,
        "receptionist",
        cast.laval.pk,
    )


def test_the_patient_reads_the_clinics_reason_in_the_cancellation_email(
    cast: Cast, smtp_server: Inbox
) -> None:
    cast.marie.preferred_language = "fr"
    cast.marie.save()
    appointment = booked(cast, day=30)
    ctx = staff_context(cast.sophie, cast.laval.pk)
    services.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="Dr Roy est <malade>")
    deliver_due()
    smtp_server.wait_for(cast.marie.email)
    cancelled = [m for m in smtp_server.messages if "annulé" in str(m["Subject"])]
    assert len(cancelled) == 1, [str(m["Subject"]) for m in smtp_server.messages]
    text = cancelled[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    html = cancelled[0].get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "La clinique a annulé" in text
    assert "Dr Roy est <malade>" in text
    assert "Dr Roy est &lt;malade&gt;" in html


@pytest.mark.parametrize(
    ("language", "words"), [("fr", "raison"), ("en", "reason")], ids=["fr", "en"]
)
def test_a_cancellation_without_a_reason_is_refused_in_both_languages(
    cast: Cast, language: str, words: str
) -> None:
    appointment = booked(cast, day=30)
    response = Api(cast.sophie, language=language).post(
        url(cast, appointment, "cancel"), {"reason": "   "}
    )
    assert response.status_code == 422
    assert words in str(response.json()).lower()
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    assert messages(appointment, Kind.CANCELLED) == []


def test_a_visit_that_is_over_or_cancelled_cannot_be_cancelled(cast: Cast) -> None:
    appointment = booked(cast, day=23, hour=10)
    ctx = staff_context(cast.sophie, cast.laval.pk)
    with clock.frozen_now(local(2026, 11, 23, 10, 30)), pytest.raises(Conflict) as over:
        services.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="trop tard")
    assert over.value.code == "visit_over"
    services.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="absence")
    with pytest.raises(Conflict) as twice:
        services.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="encore")
    assert twice.value.code == "not_changeable"
    assert messages(appointment, Kind.CANCELLED) == [MessageStatus.PENDING]


def test_staff_of_another_clinic_cannot_cancel(cast: Cast) -> None:
    appointment = booked(cast, day=30)
    ctx = staff_context(cast.karim, cast.montreal.pk)
    with pytest.raises(NotFound):
        services.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="x")
    appointment.refresh_from_db()
    assert appointment.status == "booked"


# --- Who came --------------------------------------------------------------------------------


def attend(cast: Cast, appointment: Appointment, status: str) -> Appointment:
    return services.record_attendance(
        staff_context(cast.sophie, cast.laval.pk), appointment_id=appointment.pk, status=status
    )


def test_check_in_opens_on_the_visit_day_then_the_visit_is_fulfilled(cast: Cast) -> None:
    tomorrow = booked(cast, day=24)
    with pytest.raises(Conflict) as early:
        attend(cast, tomorrow, "arrived")
    assert early.value.code == "too_early"
    today = booked(cast, day=23, hour=11)
    with pytest.raises(Conflict):
        attend(cast, today, "fulfilled")  # not arrived yet
    assert attend(cast, today, "arrived").status == "arrived"
    assert attend(cast, today, "fulfilled").status == "fulfilled"
    actions = AuditEntry.objects.filter(object_id=str(today.pk)).values_list("action", flat=True)
    assert {"appointment.arrived", "appointment.fulfilled"} <= set(actions)


def test_check_in_opens_at_local_midnight_not_utcs(cast: Cast) -> None:
    """At 20:00 in Quebec it is already tomorrow in UTC: tomorrow's patient still waits."""
    tomorrow = booked(cast, day=24, hour=8)
    with clock.frozen_now(local(2026, 11, 23, 20, 0)), pytest.raises(Conflict) as early:
        attend(cast, tomorrow, "arrived")
    assert early.value.code == "too_early"
    with clock.frozen_now(local(2026, 11, 24, 0, 1)):
        assert attend(cast, tomorrow, "arrived").status == "arrived"


def test_a_missed_visit_notice_is_not_sent_once_the_patient_is_in(
    cast: Cast, smtp_server: Inbox
) -> None:
    """Re-checked when it goes out, whatever changed the appointment since."""
    appointment = booked(cast, day=23, hour=9)
    with clock.frozen_now(local(2026, 11, 23, 9, 20)):
        attend(cast, appointment, "noshow")
        Appointment.objects.filter(pk=appointment.pk).update(status="arrived")
        deliver_due()
    assert messages(appointment, Kind.MISSED) == [MessageStatus.CANCELLED]
    assert not [m for m in smtp_server.messages if "missed" in str(m["Subject"])]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer at a time")
@pytest.mark.django_db(transaction=True)
def test_an_appointment_moved_to_another_clinic_while_staff_act_is_not_theirs(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The clinic is checked again under the row lock: a patient's move to another
    clinic's time, committed (by another connection) between the staff's first read and
    the lock, wins."""
    appointment = booked(cast, day=30)
    elsewhere = make_slot(cast.montreal_doctor, local(2026, 11, 30, 11, 0))
    real_read = clinic_appointment

    def read_then_patient_moves(ctx: Any, appointment_id: int) -> Appointment:
        found = real_read(ctx, appointment_id)
        outcomes = at_once(
            lambda: services.reschedule_appointment(
                user=cast.marie, appointment_id=appointment_id, new_slot_id=elsewhere.pk
            )
        )
        assert outcomes == ["won"], outcomes
        return found

    monkeypatch.setattr(services, "clinic_appointment", read_then_patient_moves)
    ctx = staff_context(cast.sophie, cast.laval.pk)
    with pytest.raises(NotFound) as lost:
        services.cancel_for_clinic(ctx, appointment_id=appointment.pk, reason="fermeture")
    assert lost.value.code == "appointment_not_found", lost.value.message
    appointment.refresh_from_db()
    assert (appointment.status, appointment.slot_id) == ("booked", elsewhere.pk)


def test_a_no_show_sends_the_missed_appointment_notice(cast: Cast, smtp_server: Inbox) -> None:
    cast.marie.preferred_language = "fr"
    cast.marie.save()
    appointment = booked(cast, day=23, hour=9)
    with pytest.raises(Conflict):
        attend(cast, appointment, "noshow")  # 08:00: the visit has not started
    with clock.frozen_now(local(2026, 11, 23, 9, 20)):
        assert attend(cast, appointment, "noshow").status == "noshow"
        assert messages(appointment, Kind.MISSED) == [MessageStatus.PENDING]
        deliver_due()
    smtp_server.wait_for(cast.marie.email)
    subjects = [str(m["Subject"]) for m in smtp_server.messages]
    missed = [m for m in smtp_server.messages if "manqué" in str(m["Subject"])]
    assert len(missed) == 1, subjects
    assert not [p for p in missed[0].iter_attachments() if p.get_content_type() == "text/calendar"]
    # The slot stays taken: a missed visit is history, not a free time.
    assert Slot.objects.get(pk=appointment.slot_id).status == SlotStatus.BOOKED


def test_a_patient_marked_absent_by_mistake_is_checked_in_and_not_told(cast: Cast) -> None:
    appointment = booked(cast, day=23, hour=9)
    with clock.frozen_now(local(2026, 11, 23, 9, 5)):
        attend(cast, appointment, "noshow")
        assert attend(cast, appointment, "arrived").status == "arrived"
    assert messages(appointment, Kind.MISSED) == [MessageStatus.CANCELLED]
    with pytest.raises(Conflict):
        attend(cast, appointment, "noshow")  # arrived is not undone into absent


def test_attendance_over_the_api_refuses_an_unknown_status_in_both_languages(
    cast: Cast,
) -> None:
    appointment = booked(cast, day=23, hour=11)
    for language in ("fr", "en"):
        response = Api(cast.sophie, language=language).post(
            url(cast, appointment, "attendance"), {"status": "cancelled"}
        )
        assert response.status_code == 422, response.content
    response = Api(cast.sophie, language="en").post(
        url(cast, appointment, "attendance"), {"status": "arrived"}
    )
    assert (response.status_code, response.json()["status"]) == (200, "arrived")
    early = Api(cast.sophie, language="en").post(
        url(cast, booked(cast, day=25), "attendance"), {"status": "arrived"}
    )
    assert early.status_code == 409
    assert "day of the visit" in early.json()["error"]["message"]


def test_an_unknown_status_is_refused_by_the_service_too(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        attend(cast, booked(cast), "booked")


# --- Races -----------------------------------------------------------------------------------


def at_once(*actions: Any) -> list[Any]:
    """Run the actions in threads released together, one connection each; what each gave:
    "won", a Conflict's code, or any other exception."""
    barrier = threading.Barrier(len(actions))
    outcomes: list[Any] = []

    def run(action: Any) -> None:
        barrier.wait()
        try:
            action()
            outcomes.append("won")
        except Conflict as exc:
            outcomes.append(exc.code)
        except BaseException as exc:
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_the_patient_and_the_clinic_cancel_at_once_and_one_cancellation_happens(
    cast: Cast,
) -> None:
    """Both take the appointment row lock first: one wins, the other sees it cancelled."""
    ctx = staff_context(cast.sophie, cast.laval.pk)
    for hour in range(9, 14):
        appointment = booked(cast, day=30, hour=hour)
        outcomes = at_once(
            lambda a=appointment: services.cancel_appointment(user=cast.marie, appointment_id=a.pk),
            lambda a=appointment: services.cancel_for_clinic(
                ctx, appointment_id=a.pk, reason="fermeture"
            ),
        )
        assert sorted(map(str, outcomes)) == ["not_changeable", "won"], outcomes
        appointment.refresh_from_db()
        assert appointment.status == "cancelled"
        assert len(messages(appointment, Kind.CANCELLED)) == 1
        assert Slot.objects.get(pk=appointment.slot_id).status == SlotStatus.FREE
    assert Appointment.objects.filter(status="cancelled").count() == 5
