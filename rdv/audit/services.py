"""Writing the audit log: the only code that creates AuditEntry rows."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from rdv.accounts.models import User
from rdv.audit import context
from rdv.audit.chain import GENESIS, entry_hash
from rdv.audit.models import AuditEntry, Outcome
from rdv.core import clock

# Any constant: the key of the transaction-scoped advisory lock that orders appends.
_APPEND_LOCK = 0x5244_5641_5544_4954  # "RDVAUDIT"
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
    """Append one entry, chained to the last one, in the caller's transaction.

    Call it as the last write of the transaction it records: on PostgreSQL the append
    takes a transaction-scoped advisory lock, so only the short tail from here to the
    commit is serialised, never the unrelated work before it. (SQLite serialises writers
    anyway.) If the caller's transaction rolls back, the entry goes with it.
    """
    if not settings.AUDIT_ENABLED:
        return None
    request = context.current()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_APPEND_LOCK])
        last = AuditEntry.objects.order_by("-seq").values_list("seq", "hash").first()
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS)
        fields = {
            "seq": seq,
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
        return AuditEntry.objects.create(
            **fields, prev_hash=prev_hash, hash=entry_hash(prev_hash, fields)
        )
