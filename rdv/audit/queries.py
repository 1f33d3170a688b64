"""Reading the audit log: verification, and a patient's view of who accessed their file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import QuerySet

from rdv.accounts.models import User
from rdv.audit.anchors import read_anchors
from rdv.audit.chain import GENESIS, HASHED_FIELDS, entry_hash
from rdv.audit.models import AuditEntry
from rdv.audit.services import STAFF_ROLES
from rdv.patients.models import Patient

BATCH = 2000


@dataclass(frozen=True)
class Verification:
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def _entries() -> Iterator[AuditEntry]:
    last_seq = 0
    while True:
        batch = list(AuditEntry.objects.filter(seq__gt=last_seq).order_by("seq")[:BATCH])
        if not batch:
            return
        yield from batch
        last_seq = batch[-1].seq


def verify_chain() -> Verification:
    """Recompute every hash in order; name the first entry that does not fit.

    Detects an altered entry (its hash no longer matches), a deleted one (a gap in seq or
    a broken link), one inserted out of order (a broken link), and a rewritten chain
    (an anchor kept outside the database no longer matches).
    """
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    hashes: dict[int, str] = {}
    for entry in _entries():
        fields = {name: getattr(entry, name) for name in HASHED_FIELDS}
        if entry.seq != expected_seq:
            return Verification(
                checked, entry.seq, f"entries {expected_seq}..{entry.seq - 1} are missing"
            )
        if entry.prev_hash != prev_hash:
            return Verification(checked, entry.seq, "does not follow the previous entry")
        if entry_hash(prev_hash, fields) != entry.hash:
            return Verification(checked, entry.seq, "was altered (its hash does not match)")
        hashes[entry.seq] = entry.hash
        prev_hash, expected_seq, checked = entry.hash, entry.seq + 1, checked + 1
    for anchor in read_anchors():
        if anchor.seq not in hashes:
            return Verification(checked, anchor.seq, "anchored entry is missing: the log was cut")
        if hashes[anchor.seq] != anchor.hash:
            return Verification(
                checked, anchor.seq, "differs from its anchor: the chain was rewritten"
            )
    return Verification(checked)


def access_log_for(user: User) -> QuerySet[AuditEntry]:
    """Staff access to the files of the patients this user manages (Law 25 transparency)."""
    patient_ids = Patient.objects.filter(account=user).values("pk")
    return AuditEntry.objects.filter(
        patient_id__in=patient_ids, actor_role__in=STAFF_ROLES
    ).order_by("-seq")
