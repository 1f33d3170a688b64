"""Reading the audit log: verification, and a patient's view of who accessed their file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from rdv.accounts.models import User
from rdv.audit.anchors import read_anchors
from rdv.audit.chain import GENESIS, HASHED_FIELDS, entry_hash
from rdv.audit.models import AuditEntry
from rdv.audit.services import STAFF_ROLES
from rdv.clinics.models import Clinic
from rdv.core import clock
from rdv.patients.models import Patient

BATCH = 2000


@dataclass(frozen=True)
class Verification:
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class _Sealed:
    seq: int
    prev_hash: str
    hash: str
    fields: dict[str, Any]


def _sealed_entries() -> Iterator[_Sealed]:
    last_seq = 0
    while True:
        rows = AuditEntry.objects.filter(seq__gt=last_seq).order_by("seq")
        batch = list(rows.values(*HASHED_FIELDS, "prev_hash", "hash")[:BATCH])
        if not batch:
            return
        for row in batch:
            # Sealed rows have all three (constraint audit_seal_whole).
            yield _Sealed(row["seq"], row["prev_hash"], row["hash"], row)
        last_seq = batch[-1]["seq"]


def verify_chain() -> Verification:
    """Recompute every hash in order; name the first entry that does not fit.

    Detects an altered entry (its hash no longer matches), a deleted one (a gap in seq or
    a broken link), one inserted out of order (a broken link), a rewritten chain (an
    anchor kept outside the database no longer matches), and an entry left out of the
    chain for longer than AUDIT_SEAL_GRACE_SECONDS (the sealer is not running, or someone
    keeps entries out of the chain). Read-only: it never seals anything itself.
    """
    anchored = {anchor.seq: anchor.hash for anchor in read_anchors()}
    result = _verify_links(anchored)
    if not result.ok:
        return result
    cut = [seq for seq in sorted(anchored) if seq > result.checked]
    if cut:
        return Verification(result.checked, cut[0], "anchored entry is missing: the log was cut")
    return _verify_sealing(result.checked)


def _verify_links(anchored: dict[int, str]) -> Verification:
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    for entry in _sealed_entries():
        fields = entry.fields
        if entry.seq != expected_seq:
            return Verification(
                checked, entry.seq, f"entries {expected_seq}..{entry.seq - 1} are missing"
            )
        if entry.prev_hash != prev_hash:
            return Verification(checked, entry.seq, "does not follow the previous entry")
        if entry_hash(prev_hash, fields) != entry.hash:
            return Verification(checked, entry.seq, "was altered (its hash does not match)")
        if anchored.get(entry.seq, entry.hash) != entry.hash:
            return Verification(
                checked, entry.seq, "differs from its anchor: the chain was rewritten"
            )
        prev_hash, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
    return Verification(checked)


def _verify_sealing(checked: int) -> Verification:
    unsealed = AuditEntry.objects.filter(seq__isnull=True)
    deadline = clock.now() - timedelta(seconds=settings.AUDIT_SEAL_GRACE_SECONDS)
    stale = unsealed.filter(occurred_at__lt=deadline).order_by("id").first()
    problem = ""
    if stale is not None:
        problem = (
            f"entry id {stale.pk} ({stale.action}, {stale.occurred_at.isoformat()}) "
            "was never sealed into the chain: is the worker running?"
        )
    return Verification(checked, problem=problem, unsealed=unsealed.count())


def access_log_for(user: User) -> QuerySet[AuditEntry]:
    """Staff access to the files of the patients this user manages (Law 25 transparency)."""
    patient_ids = Patient.objects.filter(account=user).values("pk")
    return AuditEntry.objects.filter(
        patient_id__in=patient_ids, actor_role__in=STAFF_ROLES
    ).order_by("-id")


@dataclass(frozen=True)
class AccessRecord:
    """One staff access to a patient's file, as the account holder is shown it."""

    at: datetime  # in Quebec local time, with its offset
    action: str
    outcome: str
    staff_name: str
    staff_role: str
    clinic: str | None
    patient_id: int | None
    patient_first_name: str | None


def describe_access(entries: Iterable[AuditEntry]) -> list[AccessRecord]:
    """Name the staff member, clinic and patient of each entry (three queries in all).

    A staff member whose account is gone shows an empty name: the entry itself never
    changes.
    """
    rows = list(entries)
    staff = User.objects.in_bulk({e.actor_id for e in rows if e.actor_id is not None})
    clinics = Clinic.objects.in_bulk({e.clinic_id for e in rows if e.clinic_id is not None})
    patients = Patient.objects.in_bulk({e.patient_id for e in rows if e.patient_id is not None})
    records = []
    for entry in rows:
        person = staff.get(entry.actor_id) if entry.actor_id is not None else None
        clinic = clinics.get(entry.clinic_id) if entry.clinic_id is not None else None
        patient = patients.get(entry.patient_id) if entry.patient_id is not None else None
        records.append(
            AccessRecord(
                at=entry.occurred_at.astimezone(clock.LOCAL_TZ),
                action=entry.action,
                outcome=entry.outcome,
                staff_name=f"{person.first_name} {person.last_name}".strip() if person else "",
                staff_role=entry.actor_role,
                clinic=clinic.name if clinic else None,
                patient_id=entry.patient_id,
                patient_first_name=patient.first_name if patient else None,
            )
        )
    return records
