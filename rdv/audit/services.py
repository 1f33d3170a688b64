"""Writing the audit log: the only code that creates AuditEntry rows."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction

from rdv.accounts.models import User
from rdv.audit import context
from rdv.audit.chain import GENESIS, HASHED_FIELDS, entry_hash
from rdv.audit.models import AuditEntry, Outcome
from rdv.continuity import readonly
from rdv.core import clock

# Any constant: the key of the transaction-scoped advisory lock that only sealers take.
_SEAL_LOCK = 0x5244_5641_5544_4954  # "RDVAUDIT"
SEAL_BATCH = 2000
STAFF_ROLES = ("clinic_admin", "receptionist", "practitioner", "platform_admin")


@dataclass(frozen=True)
class Subject:
    """What an entry is about."""

    object_type: str = ""
    object_id: str = ""
    patient_id: int | None = None
    clinic_id: int | None = None


def default_role(actor: User | None) -> str:
    if actor is None:
        return "anonymous"
    if actor.is_staff:
        return "platform_admin"
    # Outside one clinic's context (e.g. signing in), clinic staff act as "staff".
    return "staff" if actor.memberships.exists() else "patient"


def record(
    action: str,
    *,
    actor: User | None,
    subject: Subject = Subject(),
    role: str | None = None,
    outcome: str = Outcome.SUCCESS,
) -> AuditEntry | None:
    """Write one entry in the caller's transaction; it joins the chain once committed.

    Nothing here waits for other transactions: the entry is an insert like any other, so
    two unrelated bookings never queue behind the audit log. If the caller's transaction
    rolls back, the entry goes with it. Right after the commit, this process tries to seal
    what is pending (skipping if another sealer is at work: that one, the next commit or
    the worker's periodic run will seal it).
    """
    if not settings.AUDIT_ENABLED:
        return None
    request = context.current()
    fields = {
        "occurred_at": clock.now(),
        "actor_id": actor.pk if actor is not None else None,
        "actor_role": role or default_role(actor),
        "clinic_id": subject.clinic_id,
        "action": action,
        "object_type": subject.object_type,
        "object_id": subject.object_id,
        "patient_id": subject.patient_id,
        "ip": request.ip,
        "user_agent": request.user_agent,
        "request_id": request.request_id,
        "outcome": str(outcome),
    }
    # "Will refuse" too: an entry that is a request's first query opens the connection,
    # which becomes read-only as it opens.
    if readonly.session_will_refuse_writes():
        return _record_in_read_only_mode(fields)
    entry = AuditEntry.objects.create(**fields)
    transaction.on_commit(_seal_if_free, robust=True)
    return entry


def _record_in_read_only_mode(fields: dict[str, Any]) -> AuditEntry | None:
    """The audit entry of a read while the session refuses writes (rdv.continuity.readonly).

    A read is only allowed if it is logged, so this one write is exempt. PostgreSQL fixes a
    transaction's read-only state when it starts: a read already under way in a read-only
    transaction gets its entry right after it commits (before the view answers; a failure
    to write it fails the request), and nothing if it rolls back, as before.
    """
    conn = transaction.get_connection()
    if conn.in_atomic_block and readonly.in_read_only_transaction(conn):
        transaction.on_commit(partial(_create_writable, fields))
        return None
    return _create_writable(fields)


def _create_writable(fields: dict[str, Any]) -> AuditEntry:
    with readonly.writable():
        entry = AuditEntry.objects.create(**fields)
        transaction.on_commit(_seal_if_free, robust=True)
    return entry


def sealed_head() -> tuple[int, str] | None:
    """The last sealed entry's (seq, hash), or None if nothing is sealed yet."""
    head = (
        AuditEntry.objects.filter(seq__isnull=False)
        .order_by("-seq")
        .values_list("seq", "hash")
        .first()
    )
    # A sealed row has both (constraint audit_seal_whole).
    return cast(tuple[int, str] | None, head)


def _seal_if_free() -> None:
    # Sealing only completes entries already written: exempt from read-only mode too.
    with readonly.writable():
        seal_pending(wait=False)


def seal_pending(*, wait: bool = True) -> int:
    """Chain every committed, unsealed entry, in commit order; return how many.

    Only sealers take the lock, and only for this short step. With wait=False, return 0
    at once if another sealer holds it. An entry whose transaction commits after this
    step has read the pending ones is sealed by the next run, after them: the chain's
    order is the order in which entries became visible, which is what an auditor reads.
    """
    sealed = 0
    while True:
        with transaction.atomic():
            if not _take_seal_lock(wait=wait):
                return sealed
            pending = list(AuditEntry.objects.filter(seq__isnull=True).order_by("id")[:SEAL_BATCH])
            if not pending:
                return sealed
            seq, prev_hash = sealed_head() or (0, GENESIS)
            for entry in pending:
                seq += 1
                entry.seq = seq
                entry.prev_hash = prev_hash
                entry.hash = prev_hash = entry_hash(
                    prev_hash, {name: getattr(entry, name) for name in HASHED_FIELDS}
                )
            AuditEntry.objects.bulk_update(pending, ["seq", "prev_hash", "hash"])
            sealed += len(pending)


def _take_seal_lock(*, wait: bool) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite: the IMMEDIATE transaction already excludes other writers.
    with connection.cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SEAL_LOCK])
            return True
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SEAL_LOCK])
        row = cursor.fetchone()
    return bool(row and row[0])
