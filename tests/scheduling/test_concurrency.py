"""Races for the same slots, with real threads and one database connection each.

Runs on PostgreSQL (row locks, concurrent transactions) and on SQLite (serialised writers)
alike: the compare-and-set must give exactly one winner per slot on both.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection

from rdv.accounts.models import User
from rdv.core.errors import SlotUnavailable
from rdv.patients.models import Patient
from rdv.scheduling import services
from rdv.scheduling.models import Appointment, AppointmentStatus, Slot, SlotStatus
from tests.conftest import local, make_slot
from tests.factories import PatientFactory, PractitionerFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# PostgreSQL on these machines allows 100 connections; the app itself would use a pool.
MAX_OPEN_CONNECTIONS = 60


def patients(count: int) -> list[User]:
    users = [UserFactory.create() for _ in range(count)]
    for user in users:
        PatientFactory.create(account=user, relationship=Patient.Relationship.SELF)
    return users


def race(attempts: list[Callable[[], object]]) -> tuple[int, int, list[BaseException]]:
    """Start every attempt at once; count wins, clean refusals, and anything else."""
    barrier = threading.Barrier(len(attempts))
    gate = threading.BoundedSemaphore(MAX_OPEN_CONNECTIONS)
    lock = threading.Lock()
    outcome = {"won": 0, "refused": 0}
    unexpected: list[BaseException] = []

    def run(attempt: Callable[[], object]) -> None:
        barrier.wait()
        with gate:
            try:
                attempt()
                key = "won"
            except SlotUnavailable:
                key = "refused"
            except BaseException as exc:
                with lock:
                    unexpected.append(exc)
                return
            finally:
                connection.close()
        with lock:
            outcome[key] += 1

    threads = [threading.Thread(target=run, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a booking thread hung"
    return outcome["won"], outcome["refused"], unexpected


def test_fifty_patients_race_for_one_slot_and_exactly_one_wins() -> None:
    slot = make_slot(PractitionerFactory.create(), local(2026, 11, 25, 9, 0))
    users = patients(50)
    won, refused, unexpected = race(
        [lambda u=u: services.book_appointment(user=u, slot_id=slot.pk) for u in users]  # type: ignore[misc]
    )
    assert unexpected == []
    assert (won, refused) == (1, 49)
    assert Appointment.objects.filter(slot=slot).count() == 1
    assert Slot.objects.get(pk=slot.pk).status == SlotStatus.BOOKED


def test_two_hundred_patients_race_for_twenty_slots() -> None:
    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 25, 9, 0)
    slots = [
        make_slot(practitioner, start + timedelta(minutes=15 * i), minutes=15) for i in range(20)
    ]
    users = patients(200)
    rng = random.Random(7)
    picks = [slots[i % 20].pk for i in range(200)]
    rng.shuffle(picks)
    won, refused, unexpected = race(
        [
            lambda u=u, s=s: services.book_appointment(user=u, slot_id=s)  # type: ignore[misc]
            for u, s in zip(users, picks, strict=True)
        ]
    )
    assert unexpected == []
    assert (won, refused) == (20, 180)
    active = Appointment.objects.exclude(status=AppointmentStatus.CANCELLED)
    assert active.count() == 20
    assert active.values("slot").distinct().count() == 20
    assert not Slot.objects.filter(status=SlotStatus.FREE).exists()


def test_moves_and_bookings_racing_never_double_book() -> None:
    """Patients moving their appointments while others book the slots being freed."""
    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 26, 9, 0)
    old = [make_slot(practitioner, start + timedelta(minutes=30 * i)) for i in range(10)]
    new = [make_slot(practitioner, start + timedelta(hours=6, minutes=30 * i)) for i in range(10)]
    movers = patients(10)
    bookers = patients(20)
    appointments = [
        services.book_appointment(user=u, slot_id=s.pk) for u, s in zip(movers, old, strict=True)
    ]
    attempts: list[Callable[[], object]] = [
        lambda u=u, a=a, s=s: services.reschedule_appointment(  # type: ignore[misc]
            user=u, appointment_id=a.pk, new_slot_id=s.pk
        )
        for u, a, s in zip(movers, appointments, new, strict=True)
    ]
    targets = old + new
    attempts += [
        lambda u=u, s=s: services.book_appointment(user=u, slot_id=s.pk)  # type: ignore[misc]
        for u, s in zip(bookers, targets, strict=True)
    ]
    _, _, unexpected = race(attempts)
    assert unexpected == []
    active = list(
        Appointment.objects.exclude(status=AppointmentStatus.CANCELLED).values_list(
            "slot_id", flat=True
        )
    )
    assert len(active) == len(set(active))
    booked = set(Slot.objects.filter(status=SlotStatus.BOOKED).values_list("pk", flat=True))
    assert booked == set(active)


def test_cancel_and_reschedule_racing_leave_slots_and_appointments_consistent() -> None:
    """Each round, the same patient cancels and moves one appointment at the same moment."""
    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 27, 9, 0)
    for round_ in range(8):
        user = patients(1)[0]
        old = make_slot(practitioner, start + timedelta(hours=round_))
        new = make_slot(practitioner, start + timedelta(hours=round_, minutes=30))
        appointment = services.book_appointment(user=user, slot_id=old.pk)
        _, _, unexpected = race(
            [
                lambda u=user, a=appointment: services.cancel_appointment(  # type: ignore[misc]
                    user=u, appointment_id=a.pk
                ),
                lambda u=user, a=appointment, s=new: services.reschedule_appointment(  # type: ignore[misc]
                    user=u, appointment_id=a.pk, new_slot_id=s.pk
                ),
            ]
        )
        assert [type(e).__name__ for e in unexpected] in ([], ["Conflict"])
        for slot in (old, new):
            slot.refresh_from_db()
            active = Appointment.objects.filter(slot=slot).exclude(
                status=AppointmentStatus.CANCELLED
            )
            assert (slot.status == SlotStatus.BOOKED) == active.exists(), (round_, slot.pk)


def test_concurrent_bookings_keep_the_audit_chain_whole() -> None:
    from rdv.audit.models import AuditEntry  # noqa: PLC0415
    from rdv.audit.queries import verify_chain  # noqa: PLC0415
    from rdv.audit.services import seal_pending  # noqa: PLC0415

    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 28, 9, 0)
    slots = [
        make_slot(practitioner, start + timedelta(minutes=15 * i), minutes=15) for i in range(10)
    ]
    users = patients(40)
    won, _, unexpected = race(
        [
            lambda u=u, s=s: services.book_appointment(user=u, slot_id=s.pk)  # type: ignore[misc]
            for u, s in zip(users, slots * 4, strict=True)
        ]
    )
    assert unexpected == []
    assert won == 10
    assert AuditEntry.objects.filter(action="appointment.book").count() == 10
    seal_pending()  # whatever the after-commit sealing left (another sealer was busy)
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 11)
    )
    assert verify_chain().ok


def test_ten_accounts_racing_with_one_health_card_get_one_appointment() -> None:
    from rdv.core.errors import Conflict  # noqa: PLC0415
    from rdv.patients.services import set_health_card  # noqa: PLC0415

    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 29, 9, 0)
    slots = [
        make_slot(practitioner, start + timedelta(minutes=15 * i), minutes=15) for i in range(10)
    ]
    bots = patients(10)
    for bot in bots:
        twin = Patient.objects.get(account=bot)
        Patient.objects.filter(pk=twin.pk).update(first_name="Sam", last_name="Patient")
        twin.refresh_from_db()
        set_health_card(patient=twin, ramq_number="PATS80010111", card_sequence_number="01")
    outcome = {"won": 0, "card": 0}
    lock = threading.Lock()

    def attempt(user: User, slot_id: int) -> None:
        try:
            services.book_appointment(user=user, slot_id=slot_id)
            key = "won"
        except Conflict:
            key = "card"
        with lock:
            outcome[key] += 1

    _, _, unexpected = race(
        [
            lambda u=u, s=s: attempt(u, s.pk)  # type: ignore[misc]
            for u, s in zip(bots, slots, strict=True)
        ]
    )
    assert unexpected == []
    assert outcome == {"won": 1, "card": 9}
    assert Appointment.objects.count() == 1


def test_families_racing_for_overlapping_times_never_end_half_booked() -> None:
    """Twenty families of two, each wanting two of three shared times in a different order:
    one family wins both of its times; the others get nothing at all (no deadlock either)."""
    practitioner = PractitionerFactory.create()
    start = local(2026, 11, 25, 9, 0)
    slots = [make_slot(practitioner, start + timedelta(minutes=30 * i)) for i in range(3)]
    wants = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)]
    attempts: list[Callable[[], object]] = []
    for index in range(20):
        parent = UserFactory.create()
        children = [
            PatientFactory.create(account=parent, relationship=Patient.Relationship.CHILD)
            for _ in range(2)
        ]
        first, second = wants[index % len(wants)]
        choices = [
            services.FamilyChoice(patient_id=children[0].pk, slot_id=slots[first].pk),
            services.FamilyChoice(patient_id=children[1].pk, slot_id=slots[second].pk),
        ]
        attempts.append(
            lambda p=parent, c=choices: services.book_family_visit(user=p, choices=c)  # type: ignore[misc]
        )
    won, refused, unexpected = race(attempts)
    assert unexpected == []
    assert (won, refused) == (1, 19)
    booked = Appointment.objects.all()
    assert booked.count() == 2
    assert booked.values("booked_by").distinct().count() == 1
    assert Slot.objects.filter(status=SlotStatus.BOOKED).count() == 2
