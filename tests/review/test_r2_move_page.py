"""Review R2: the "move an appointment" page names the patient exactly as written.

Django's `add` filter adds numbers when both sides look like integers, so a name built
with `first|add:" "|add:last` turned "12" and "34" into "46".
"""

from __future__ import annotations

from rdv.core import clock
from rdv.patients.models import Patient
from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot, portal_client


def test_the_move_page_shows_a_numeric_looking_name_as_written(cast: Cast) -> None:
    Patient.objects.filter(pk=cast.paul_self.pk).update(first_name="12", last_name="34")
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    booked = services.book_appointment(user=cast.paul, slot_id=slot.pk, reason="")
    page = portal_client(cast.sophie).get(
        f"/clinique/{cast.laval.pk}/rendez-vous/{booked.pk}/deplacer/"
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "Move the appointment of 12 34" in text
    assert "Move the appointment of 46" not in text


def test_the_callers_times_page_shows_a_numeric_looking_name_as_written(cast: Cast) -> None:
    Patient.objects.filter(pk=cast.paul_self.pk).update(first_name="12", last_name="34")
    client = portal_client(cast.sophie)
    session = client.session
    session["portal_caller"] = {
        "p": cast.paul_self.pk,
        "c": cast.laval.pk,
        "until": clock.now().timestamp() + 600,
    }
    session.save()
    page = client.get(f"/clinique/{cast.laval.pk}/telephone/creneaux/")
    assert page.status_code == 200
    assert "A time for 12 34" in page.content.decode()
