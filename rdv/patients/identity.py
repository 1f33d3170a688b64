"""Finding a patient by surname and date of birth, for a caller without their health card.

The date of birth is encrypted (DESIGN.md invariant 7), so it cannot be searched. The
blind index is the HMAC of the surname reduced to its letters A–Z (accents, spaces and
hyphens dropped, as on the health card: "Côté" and "COTE" match) and the ISO date.
"""

from __future__ import annotations

from datetime import date

from rdv.core.crypto import blind_index
from rdv.patients.ramq import ramq_letters

IDENTITY_PURPOSE = "patients.patient.identity"


def identity_index(last_name: str, date_of_birth: date | None) -> str:
    """The lookup key for this surname and date of birth ("" when either is missing)."""
    letters = ramq_letters(last_name or "")
    if not letters or date_of_birth is None:
        return ""
    return blind_index(f"{letters}|{date_of_birth.isoformat()}", purpose=IDENTITY_PURPOSE)
