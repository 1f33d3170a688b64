"""The clinic portal's front desk: the day's agenda, checking patients in, marking them
absent, cancelling for the clinic. (Isolation between clinics is walked for every portal
page in tests/security/test_clinic_isolation.py.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils.html import strip_tags

from rdv.audit.models import AuditEntry
from rdv.clinics.queries import staff_context
from rdv.core import clock
from rdv.notifications.models import Kind, Message
from rdv.scheduling import services
from rdv.scheduling.models import Appointment
from tests.conftest import PASSWORD, Cast, local, make_slot, portal_client


def staff(user: Any, language: str = "en") -> Client:
    return portal_client(user, language)


def booked(cast: Cast, user: Any, hour: int, minute: int = 0, day: int = 23) -> Appointment:
    slot = make_slot(cast.dr_roy, local(2026, 11, day, hour, minute))
    return services.book_appointment(user=user, slot_id=slot.pk)


def test_a_member_of_one_clinic_goes_straight_to_its_agenda(cast: Cast) -> None:
    response = staff(cast.sophie).get("/clinique/")
    assert response.status_code == 302
    assert response["Location"] == f"/clinique/{cast.laval.pk}/agenda/"


def test_a_member_of_several_clinics_picks_one(cast: Cast) -> None:
    from rdv.clinics.models import Membership  # noqa: PLC0415

    Membership.objects.create(user=cast.sophie, clinic=cast.montreal, role="receptionist")
    page = staff(cast.sophie).get("/clinique/").content.decode()
    assert cast.laval.name in page
    assert cast.montreal.name in page


def test_the_agenda_shows_the_days_patients_and_audits_each(cast: Cast) -> None:
    marie = booked(cast, cast.marie, 9)
    paul = booked(cast, cast.paul, 10)
    booked(cast, cast.paul, 9, day=24)  # another day
    response = staff(cast.sophie).get(f"/clinique/{cast.laval.pk}/agenda/", {"date": "2026-11-23"})
    page = response.content.decode()
    assert response.status_code == 200
    assert page.index("Marie") < page.index("Paul")  # by time
    assert page.count("Roy") >= 2
    viewed = AuditEntry.objects.filter(action="agenda.view", actor_id=cast.sophie.pk)
    assert sorted(viewed.values_list("object_id", flat=True)) == sorted(
        [str(marie.pk), str(paul.pk)]
    )


def test_one_practitioners_day(cast: Cast) -> None:
    booked(cast, cast.marie, 9)
    nurse_slot = make_slot(cast.nurse_diane, local(2026, 11, 23, 11, 0))
    services.book_appointment(user=cast.paul, slot_id=nurse_slot.pk)
    page = (
        staff(cast.sophie)
        .get(
            f"/clinique/{cast.laval.pk}/agenda/",
            {"date": "2026-11-23", "practitioner": str(cast.nurse_diane.pk)},
        )
        .content.decode()
    )
    assert "Paul" in page
    assert "Marie" not in page


def test_a_bad_day_or_practitioner_falls_back_to_today_without_an_error(cast: Cast) -> None:
    booked(cast, cast.marie, 9)
    client = staff(cast.sophie)
    for params in ({"date": "2026-02-30"}, {"practitioner": "abc"}, {"date": "x" * 500}):
        response = client.get(f"/clinique/{cast.laval.pk}/agenda/", params)
        assert response.status_code == 200, params
        assert "Marie" in response.content.decode()


def test_check_in_then_seen_from_the_agenda(cast: Cast) -> None:
    appointment = booked(cast, cast.marie, 9)
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/presence/"
    response = client.post(url, {"status": "arrived"})
    assert response.status_code == 302
    assert response["Location"].endswith("?date=2026-11-23")
    appointment.refresh_from_db()
    assert appointment.status == "arrived"
    client.post(url, {"status": "fulfilled"})
    appointment.refresh_from_db()
    assert appointment.status == "fulfilled"


def test_a_no_show_before_the_visit_is_refused_in_both_languages(cast: Cast) -> None:
    appointment = booked(cast, cast.marie, 9)  # NOW is 08:00
    url = f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/presence/"
    english = staff(cast.sophie, "en").post(url, {"status": "noshow"})
    assert english.status_code == 409
    assert "once the visit has started" in english.content.decode()
    french = staff(cast.sophie, "fr").post(url, {"status": "noshow"})
    assert french.status_code == 409
    assert "une fois l’heure de sa visite passée" in french.content.decode()
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    with clock.frozen_now(local(2026, 11, 23, 9, 15)):
        assert staff(cast.sophie).post(url, {"status": "noshow"}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.status == "noshow"
    assert Message.objects.filter(appointment=appointment, kind=Kind.MISSED).exists()


def test_an_unknown_status_is_a_400_page(cast: Cast) -> None:
    appointment = booked(cast, cast.marie, 9)
    url = f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/presence/"
    assert staff(cast.sophie).post(url, {"status": "cancelled"}).status_code == 400


def test_cancelling_needs_a_reason_and_tells_the_patient(cast: Cast) -> None:
    appointment = booked(cast, cast.marie, 11)
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/annuler/"
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 422
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    done = client.post(url, {"reason": "Dr Roy est malade"})
    assert done.status_code == 302
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancelled_by) == ("cancelled", "clinic")
    assert Message.objects.filter(appointment=appointment, kind=Kind.CANCELLED).exists()
    again = client.post(url, {"reason": "encore"})
    assert again.status_code == 409


def test_a_practitioner_cannot_cancel_but_sees_the_appointment(cast: Cast) -> None:
    from rdv.clinics.models import Membership  # noqa: PLC0415
    from tests.factories import UserFactory  # noqa: PLC0415

    doctor = UserFactory.create(email="roy@example.test")
    Membership.objects.create(user=doctor, clinic=cast.laval, role="practitioner")
    appointment = booked(cast, cast.marie, 11)
    client = staff(doctor)
    page = client.get(f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/")
    assert page.status_code == 200
    refused = client.post(
        f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/annuler/", {"reason": "x"}
    )
    assert refused.status_code == 403
    appointment.refresh_from_db()
    assert appointment.status == "booked"


def test_the_appointment_page_shows_its_messages_and_audits_the_view(cast: Cast) -> None:
    appointment = booked(cast, cast.marie, 11)
    page = staff(cast.sophie).get(f"/clinique/{cast.laval.pk}/rendez-vous/{appointment.pk}/")
    assert page.status_code == 200
    assert "Booking confirmation" in page.content.decode()
    assert cast.marie.email not in page.content.decode()  # delivery, not addresses
    assert AuditEntry.objects.filter(
        action="appointment.view", actor_id=cast.sophie.pk, object_id=str(appointment.pk)
    ).exists()


def test_signed_out_visitors_are_sent_to_sign_in(cast: Cast) -> None:
    response = Client(HTTP_HOST="127.0.0.1").get(f"/clinique/{cast.laval.pk}/agenda/")
    assert response.status_code == 302
    assert "/compte/connexion/" in response["Location"]


def test_the_appointment_page_shows_the_patients_attendance_here_only(cast: Cast) -> None:
    ctx_laval = staff_context(cast.sophie, cast.laval.pk)
    with clock.frozen_now(local(2026, 11, 1, 8, 0)):
        missed = booked(cast, cast.marie, 9, day=2)
        seen = booked(cast, cast.marie, 9, day=3)
        montreal_slot = make_slot(cast.montreal_doctor, local(2026, 11, 4, 9, 0))
        elsewhere = services.book_appointment(user=cast.marie, slot_id=montreal_slot.pk)
    with clock.frozen_now(local(2026, 11, 2, 9, 30)):
        services.record_attendance(ctx_laval, appointment_id=missed.pk, status="noshow")
    with clock.frozen_now(local(2026, 11, 3, 9, 0)):
        services.record_attendance(ctx_laval, appointment_id=seen.pk, status="arrived")
    with clock.frozen_now(local(2026, 11, 4, 9, 30)):
        services.record_attendance(
            staff_context(cast.karim, cast.montreal.pk),
            appointment_id=elsewhere.pk,
            status="noshow",
        )
    upcoming = booked(cast, cast.marie, 11)
    page = staff(cast.sophie).get(f"/clinique/{cast.laval.pk}/rendez-vous/{upcoming.pk}/")
    text = " ".join(strip_tags(page.content.decode()).split())
    assert "1 visit attended · 1 missed (2026-11-02)" in text


def test_a_session_opened_without_a_second_factor_does_not_reach_the_portal(cast: Cast) -> None:
    """Say Sophie signed in as a patient, with her password only, before the clinic took
    her on: membership alone does not open the portal to that session."""
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(cast.sophie)
    refused = client.get(f"/clinique/{cast.laval.pk}/agenda/")
    assert refused.status_code == 403
    assert "sign in again with your code" in refused.content.decode()


def test_signing_in_with_the_code_opens_the_portal(cast: Cast) -> None:
    from tests.accounts.helpers import enrol, totp_code  # noqa: PLC0415

    device = enrol(cast.sophie)
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_LANGUAGE="en")
    signed = client.post(
        "/compte/connexion/",
        {"email": cast.sophie.email, "password": PASSWORD, "otp": totp_code(device)},
    )
    assert signed.status_code == 302
    assert client.get(f"/clinique/{cast.laval.pk}/agenda/").status_code == 200


def test_the_agenda_logs_a_patient_once_per_half_hour_per_staff_member(cast: Cast) -> None:
    """It refreshes itself every 20 s: each refresh is not a new line in the patient's log."""
    booked(cast, cast.marie, 9)
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/agenda/"
    for _ in range(3):
        client.get(url, HTTP_X_LIVE_REFRESH="1")
    seen = AuditEntry.objects.filter(action="agenda.view", actor_id=cast.sophie.pk)
    assert seen.count() == 1
    staff(cast.marc).get(url)  # someone else: their own line
    assert AuditEntry.objects.filter(action="agenda.view").count() == 2
    with clock.frozen_now(clock.now() + timedelta(minutes=31)):
        client.get(url)
    assert seen.count() == 2


def test_a_self_refresh_does_not_keep_a_staff_session_alive(cast: Cast) -> None:
    client = staff(cast.sophie)
    url = f"/clinique/{cast.laval.pk}/agenda/"
    assert "sessionid" in client.get(url).cookies  # a person at the desk: expiry slides
    assert "sessionid" not in client.get(url, HTTP_X_LIVE_REFRESH="1").cookies


def test_portal_pages_are_never_cached(cast: Cast) -> None:
    response = staff(cast.sophie).get(f"/clinique/{cast.laval.pk}/agenda/")
    assert "no-store" in response["Cache-Control"]
    assert "private" in response["Cache-Control"]


def test_a_day_far_from_today_falls_back_to_today_instead_of_failing(cast: Cast) -> None:
    booked(cast, cast.marie, 9)
    client = staff(cast.sophie)
    for day in ("9999-12-31", "0001-01-01", "2028-01-01"):
        response = client.get(f"/clinique/{cast.laval.pk}/agenda/", {"date": day})
        assert response.status_code == 200, day
        assert "Marie" in response.content.decode()
