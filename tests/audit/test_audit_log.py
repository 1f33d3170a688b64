"""The audit log is append-only, chained, and verifiable, including against its anchors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, IntegrityError, connection, transaction

from rdv.audit import anchors
from rdv.audit import services as audit
from rdv.audit.chain import GENESIS, HASHED_FIELDS, entry_hash
from rdv.audit.models import AuditEntry
from rdv.audit.queries import Verification, verify_chain
from rdv.core import clock
from rdv.core.errors import SlotUnavailable
from rdv.scheduling import services
from tests.conftest import Api, Cast, local, make_slot


def story(cast: Cast) -> None:
    """Marie books, cancels and books again; Paul signs in with a wrong password."""
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    second = make_slot(cast.dr_roy, local(2026, 11, 25, 10, 0))
    appointment = services.book_appointment(user=cast.marie, slot_id=first.pk)
    services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
    services.book_appointment(user=cast.marie, slot_id=second.pk)
    Api(language="en").post("/auth/token", {"email": "paul@example.test", "password": "nope"})
    # The tests run inside one transaction, so no after-commit sealing: seal by hand.
    audit.seal_pending()


@contextmanager
def triggers_disabled() -> Iterator[None]:
    """What an attacker with full database access could do."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_append_only")
        else:
            cursor.execute("DROP TRIGGER audit_seal_once")
    yield


def test_every_booking_change_and_sign_in_is_recorded_in_a_valid_chain(cast: Cast) -> None:
    story(cast)
    entries = list(AuditEntry.objects.order_by("seq"))
    assert [(e.action, e.outcome, e.actor_role) for e in entries] == [
        ("appointment.book", "success", "patient"),
        ("appointment.cancel", "success", "patient"),
        ("appointment.book", "success", "patient"),
        ("auth.token", "failure", "anonymous"),
    ]
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].patient_id == cast.marie_self.pk
    assert entries[0].clinic_id == cast.laval.pk
    assert entries[3].ip == "127.0.0.1"
    assert verify_chain().ok


def test_a_refused_booking_leaves_no_entry(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    with pytest.raises(SlotUnavailable):
        services.book_appointment(user=cast.paul, slot_id=slot.pk)
    assert AuditEntry.objects.count() == 1


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_auditentry SET action = 'x'", "DELETE FROM audit_auditentry"]
)
def test_the_database_refuses_to_change_entries(cast: Cast, statement: str) -> None:
    story(cast)
    if connection.vendor == "sqlite" and statement.startswith("DELETE"):
        pytest.skip("SQLite keeps DELETE for the test runner; the chain detects it (next tests)")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)
    assert AuditEntry.objects.count() == 4


def test_an_altered_entry_is_named(cast: Cast) -> None:
    story(cast)
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET patient_id = 999 WHERE seq = 2")
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 2)
    assert "altered" in result.problem


def test_a_deleted_entry_is_named(cast: Cast) -> None:
    story(cast)
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq = 2")
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "missing" in result.problem


def test_an_entry_inserted_out_of_order_is_named(cast: Cast) -> None:
    story(cast)
    last = AuditEntry.objects.order_by("-seq").first()
    assert last is not None
    forged = {f: getattr(last, f) for f in HASHED_FIELDS}
    forged["seq"] = 5
    wrong_prev = AuditEntry.objects.get(seq=2).hash  # chained to an older entry
    assert wrong_prev is not None
    AuditEntry.objects.create(**forged, prev_hash=wrong_prev, hash=entry_hash(wrong_prev, forged))
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_a_rewritten_chain_is_caught_by_the_anchor(cast: Cast) -> None:
    story(cast)
    anchors.write_anchor()
    # The attacker alters entry 1 and recomputes every hash after it: the chain is valid.
    with triggers_disabled():
        prev = "0" * 64
        for entry in AuditEntry.objects.order_by("seq"):
            fields = {f: getattr(entry, f) for f in HASHED_FIELDS}
            if entry.seq == 1:
                fields["patient_id"] = 999
            new_hash = entry_hash(prev, fields)
            AuditEntry.objects.filter(pk=entry.pk).update(
                patient_id=fields["patient_id"], prev_hash=prev, hash=new_hash
            )
            prev = new_hash
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "rewritten" in result.problem


def test_a_cut_log_is_caught_by_the_anchor(cast: Cast) -> None:
    story(cast)
    anchors.write_anchor()
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM audit_auditentry WHERE seq = 4")
    result = verify_chain()
    assert (result.ok, result.first_bad_seq) == (False, 4)


def test_verify_command_fails_loudly(cast: Cast) -> None:
    story(cast)
    call_command("verify_audit")
    with triggers_disabled(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET outcome = 'denied' WHERE seq = 3")
    with pytest.raises(CommandError, match="#3"):
        call_command("verify_audit")


def test_patient_sees_staff_access_to_their_family_only(cast: Cast) -> None:
    audit.record(
        "patient.view",
        actor=cast.sophie,
        role="receptionist",
        subject=audit.Subject(
            object_type="patient",
            object_id=str(cast.lea.pk),
            patient_id=cast.lea.pk,
            clinic_id=cast.laval.pk,
        ),
    )
    story(cast)  # Marie's own actions are not "access by staff"
    seen = Api(cast.marie, language="en").get("/me/access-log").json()
    assert [(e["action"], e["staff_role"], e["clinic"], e["patient_first_name"]) for e in seen] == [
        ("patient.view", "receptionist", "GMF Laval", "Léa")
    ]
    assert Api(cast.paul).get("/me/access-log").json() == []


def test_recording_a_health_card_is_audited(cast: Cast) -> None:
    from rdv.patients.ramq import expected_letters  # noqa: PLC0415
    from rdv.patients.services import set_health_card  # noqa: PLC0415

    lea = cast.lea
    letters = expected_letters(last_name_at_birth=lea.last_name, first_name=lea.first_name)
    set_health_card(
        patient=lea,
        ramq_number=f"{letters}{lea.date_of_birth:%y%m%d}11",
        card_sequence_number="01",
        actor=cast.marie,
    )
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_id, entry.actor_role, entry.patient_id) == (
        "patient.health_card",
        cast.marie.pk,
        "patient",
        lea.pk,
    )
    audit.seal_pending()
    assert verify_chain().ok


def test_an_entry_is_written_unsealed_and_sealed_in_commit_order(cast: Cast) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    services.book_appointment(user=cast.marie, slot_id=slot.pk)
    entry = AuditEntry.objects.get()
    assert (entry.seq, entry.prev_hash, entry.hash) == (None, None, None)
    assert audit.seal_pending() == 1
    entry.refresh_from_db()
    assert (entry.seq, entry.prev_hash) == (1, GENESIS)
    assert entry.hash == entry_hash(GENESIS, {f: getattr(entry, f) for f in HASHED_FIELDS})
    assert audit.seal_pending() == 0


def test_the_commit_seals_its_entries(
    cast: Cast, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    slot = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    with django_capture_on_commit_callbacks(execute=True):
        services.book_appointment(user=cast.marie, slot_id=slot.pk)
    assert AuditEntry.objects.get().seq == 1
    assert verify_chain().ok


def test_sealing_continues_the_chain_in_batches(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "SEAL_BATCH", 3)
    for n in range(4):
        audit.record("patient.view", actor=cast.sophie, subject=audit.Subject(object_id=str(n)))
    assert audit.seal_pending() == 4
    for n in range(4, 8):
        audit.record("patient.view", actor=cast.sophie, subject=audit.Subject(object_id=str(n)))
    assert audit.seal_pending() == 4
    sealed = AuditEntry.objects.order_by("seq").values_list("seq", "object_id")
    assert list(sealed) == [(n + 1, str(n)) for n in range(8)]
    assert verify_chain() == Verification(checked=8, unsealed=0)


SEAL_FIELDS = {"seq", "prev_hash", "hash"}
CONTENT_FIELDS = sorted(
    str(f.column) for f in AuditEntry._meta.concrete_fields if f.column not in SEAL_FIELDS
)
NEW_VALUES = {"occurred_at": "2020-01-01 00:00:00+00", "ip": "10.0.0.9", "outcome": "denied"}


@pytest.mark.parametrize("column", CONTENT_FIELDS)
def test_sealing_cannot_change_any_other_column(cast: Cast, column: str) -> None:
    audit.record("patient.view", actor=cast.sophie, subject=audit.Subject(patient_id=1))
    entry = AuditEntry.objects.get()
    value = NEW_VALUES.get(column, 424242 if column.endswith("id") else "changed")
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE audit_auditentry SET seq = 1, prev_hash = %s, hash = %s, {column} = %s",  # noqa: S608
            [GENESIS, "f" * 64, value],
        )
    entry.refresh_from_db()
    assert entry.seq is None


def test_a_seal_is_written_once(cast: Cast) -> None:
    audit.record("patient.view", actor=cast.sophie)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE audit_auditentry SET seq = 1, prev_hash = %s, hash = %s", [GENESIS, "a" * 64]
        )
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET hash = %s", ["b" * 64])
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET seq = NULL, prev_hash = NULL, hash = NULL")
    assert AuditEntry.objects.get().hash == "a" * 64


def test_a_half_written_seal_is_refused(cast: Cast) -> None:
    audit.record("patient.view", actor=cast.sophie)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditentry SET seq = 1")
    assert AuditEntry.objects.get().seq is None


def test_an_entry_left_unsealed_too_long_fails_verification(cast: Cast) -> None:
    story(cast)
    audit.record("patient.view", actor=cast.sophie)
    assert verify_chain() == Verification(checked=4, unsealed=1)
    call_command("verify_audit")
    with clock.frozen_now(clock.now() + timedelta(seconds=settings.AUDIT_SEAL_GRACE_SECONDS + 1)):
        result = verify_chain()
        assert (result.ok, result.first_bad_seq, result.unsealed) == (False, None, 1)
        assert "never sealed" in result.problem
        with pytest.raises(CommandError, match="never sealed"):
            call_command("verify_audit")
        audit.seal_pending()
        assert verify_chain() == Verification(checked=5, unsealed=0)


def test_the_worker_task_seals_and_queues_its_next_run(cast: Cast) -> None:
    from django_tasks_db.models import DBTaskResult  # noqa: PLC0415

    from rdv.audit.tasks import seal_audit_log  # noqa: PLC0415

    audit.record("patient.view", actor=cast.sophie)
    assert seal_audit_log.call() == 1
    assert AuditEntry.objects.get().seq == 1
    queued = DBTaskResult.objects.filter(task_path=seal_audit_log.module_path, status="READY")
    assert queued.count() == 1
    assert seal_audit_log.call() == 0
    assert queued.count() == 1  # still exactly one


def test_anchoring_seals_first(cast: Cast) -> None:
    audit.record("patient.view", actor=cast.sophie)
    call_command("anchor_audit", stdout=StringIO())
    assert anchors.read_anchors() == [anchors.Anchor(1, AuditEntry.objects.get().hash or "")]
