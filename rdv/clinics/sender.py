"""How a clinic's messages present themselves: the name beside our sending address, and
where a patient's reply goes (Clinic.sender_name, Clinic.reply_to_email).

The name ends up in an email header (From) and in text messages, so it is refused when it
could break out of its place: line breaks and other control characters (header
injection), and "<", ">" and "@", which would make it read as an address of its own.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import Clinic
from rdv.core.errors import ValidationError

SENDER_NAME_MAX = 80  # Clinic.sender_name's max_length
FORBIDDEN = frozenset("<>@")


def _unsafe(char: str) -> bool:
    # Cc: control characters (CR, LF, tab…); Cf: invisible formatting (bidi overrides…);
    # Zl/Zp: Unicode's own line and paragraph separators.
    return char in FORBIDDEN or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")


def clean_sender_name(value: str) -> str:
    """The name trimmed; ValidationError if it is too long or holds a forbidden character.
    Empty means "the clinic's name"."""
    name = value.strip()
    if len(name) > SENDER_NAME_MAX:
        raise ValidationError(
            _("Keep the sender name to %(max)d characters.") % {"max": SENDER_NAME_MAX},
            field="sender_name",
            code="sender_name_length",
        )
    if any(_unsafe(char) for char in name):
        raise ValidationError(
            _("The sender name cannot contain line breaks, control characters, <, > or @."),
            field="sender_name",
            code="sender_name_characters",
        )
    return name


def clean_reply_to(value: str) -> str:
    """A valid email address, trimmed (empty: replies go nowhere). Django's validator
    accepts a quoted local part with control characters in it: those are refused too."""
    address = value.strip()
    if not address:
        return ""
    try:
        validate_email(address)
        if any(_unsafe(char) for char in address.replace("@", "", 1)):
            raise DjangoValidationError("unsafe character")
    except DjangoValidationError:
        raise ValidationError(
            _("Enter a valid email address, for example accueil@clinique.example."),
            field="reply_to_email",
            code="reply_to_email",
        ) from None
    return address


def _displayable(text: str) -> str:
    kept = "".join(" " if _unsafe(char) else char for char in text)
    return " ".join(kept.split())[:SENDER_NAME_MAX]


def sender_name(clinic: Clinic) -> str:
    """The name the clinic's messages go out under: its sender name, else its name.

    Values saved through the settings page are already clean; whatever else wrote them
    (the admin site, a data import), unsafe characters are dropped here, never sent."""
    return _displayable(clinic.sender_name) or _displayable(clinic.name)


def reply_to(clinic: Clinic) -> str:
    """Where replies go, or "" (a stored value that is not a valid address: nowhere)."""
    try:
        return clean_reply_to(clinic.reply_to_email)
    except ValidationError:
        return ""
