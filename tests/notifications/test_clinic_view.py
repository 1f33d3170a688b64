"""The clinic sees each appointment's messages and their delivery, nothing of another
clinic's, and never the address or the text."""

from __future__ import annotations

from typing import Any

from django.core import mail

from rdv.audit.models import AuditEntry
from rdv.notifications.delivery import deliver_due
from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot


def test_reception_sees_the_message_history_of_an_appointment(
    cast: Cast, api_as: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    slot = make_slot(cast.dr_roy, local(2026, 11, 30, 9, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=slot.pk)
    deliver_due()
    assert len(mail.outbox) == 1
    path = f"/clinics/{cast.laval.pk}/appointments/{appointment.pk}/messages"
    answer = api_as(cast.sophie).get(path)
    assert answer.status_code == 200
    history = answer.json()
    assert [(m["kind"], m["channel"], m["status"]) for m in history] == [
        ("booked", "email", "sent"),
        ("reminder", "email", "pending"),
        ("reminder", "email", "pending"),
    ]
    assert history[0]["attempts"] == 1
    assert cast.marie.email not in answer.text
    assert AuditEntry.objects.filter(
        action="appointment.view", actor_id=cast.sophie.pk, patient_id=cast.marie_self.pk
    ).exists()
    # Another clinic's receptionist: as if the appointment did not exist.
    assert (
        api_as(cast.karim)
        .get(f"/clinics/{cast.montreal.pk}/appointments/{appointment.pk}/messages")
        .status_code
        == 404
    )
    assert api_as(cast.karim).get(path).status_code == 404
