"""Auditing does not make unrelated transactions wait, and sealers never fork the chain.

Real threads, each with its own database connection, committing for real.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from rdv.accounts.models import User
from rdv.audit import services as audit
from rdv.audit.models import AuditEntry
from rdv.audit.queries import Verification, verify_chain
from rdv.core import clock
from rdv.patients.models import Patient
from rdv.scheduling import services
from tests.conftest import local, make_slot
from tests.factories import PatientFactory, PractitionerFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _patient_user() -> User:
    user = UserFactory.create()
    PatientFactory.create(account=user, relationship=Patient.Relationship.SELF)
    return user


def test_an_open_auditing_transaction_does_not_hold_up_another_booking() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises every writer by design; PostgreSQL must not")
    practitioner = PractitionerFactory.create()
    first_slot = make_slot(practitioner, local(2026, 11, 25, 9, 0))
    second_slot = make_slot(practitioner, local(2026, 11, 25, 10, 0))
    first_user, second_user = _patient_user(), _patient_user()
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_first_booking() -> None:
        try:
            with transaction.atomic():
                services.book_appointment(user=first_user, slot_id=first_slot.pk)
                inside.set()  # booked and audited, not yet committed
                release.wait(timeout=30)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=slow_first_booking)
    thread.start()
    try:
        assert inside.wait(timeout=30)
        with connection.cursor() as cursor:
            # Waiting on any lock the first transaction holds fails fast instead of hanging.
            cursor.execute("SET lock_timeout = '3s'")
        second = services.book_appointment(user=second_user, slot_id=second_slot.pk)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
        release.set()
        thread.join(timeout=30)
    assert errors == []
    # Each commit sealed its own entry: the chain follows commit order, not start order.
    sealed = AuditEntry.objects.order_by("seq").values_list("seq", "object_id")
    assert [seq for seq, _ in sealed] == [1, 2]
    assert sealed[0][1] == str(second.pk)
    assert verify_chain() == Verification(checked=2, unsealed=0)


def test_concurrent_sealers_build_one_unbroken_chain() -> None:
    AuditEntry.objects.bulk_create(
        AuditEntry(
            occurred_at=clock.now(),
            actor_role="patient",
            action="t",
            object_id=str(n),
            outcome="success",
        )
        for n in range(300)
    )
    barrier = threading.Barrier(12)
    sealed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def seal(wait: bool) -> None:
        try:
            barrier.wait()
            count = audit.seal_pending(wait=wait)
            with lock:
                sealed.append(count)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=seal, args=(n % 2 == 0,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(sealed) == 300
    seqs = AuditEntry.objects.order_by("seq").values_list("seq", flat=True)
    assert list(seqs) == list(range(1, 301))
    assert verify_chain() == Verification(checked=300, unsealed=0)
