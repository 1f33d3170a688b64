"""How an entry's hash is computed: the one definition the writer and the verifier share."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_role",
    "clinic_id",
    "action",
    "object_type",
    "object_id",
    "patient_id",
    "ip",
    "user_agent",
    "request_id",
    "outcome",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the entry's fields."""
    body = {name: _canonical(fields[name]) for name in HASHED_FIELDS}
    payload = prev_hash + json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()
