"""Chain heads written outside the database.

An attacker who can rewrite the database can recompute every hash of the chain; they
cannot also rewrite these anchors, which live elsewhere (AUDIT_ANCHOR_PATH: a file on
another volume here; in production, append-only or object-locked storage on another
host). The verifier checks that every anchored (seq, hash) is still in the chain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from rdv.audit.services import sealed_head
from rdv.core import clock


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str


def anchor_path() -> Path:
    return Path(settings.AUDIT_ANCHOR_PATH)


def write_anchor() -> Anchor | None:
    """Append the sealed chain's head to the anchor file (None if nothing is sealed)."""
    head = sealed_head()
    if head is None:
        return None
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as f:
        f.write(f"{head[0]} {head[1]} {clock.now().isoformat()}\n")
        f.flush()
        os.fsync(f.fileno())
    return Anchor(seq=head[0], hash=head[1])


def read_anchors() -> list[Anchor]:
    path = anchor_path()
    if not path.exists():
        return []
    anchors = []
    for line in path.read_text(encoding="ascii").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            anchors.append(Anchor(seq=int(parts[0]), hash=parts[1]))
    return anchors
