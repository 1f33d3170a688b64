"""Quebec health-insurance (RAMQ) numbers: normalising, checking, and finding by number.

A number is 4 letters and 8 digits, e.g. "TREM 8804 1211" for Marie Tremblay, born
1988-04-12:
- letters 1–3: the surname at birth (accents stripped, other characters dropped, padded
  with X when shorter); letter 4: the first letter of the given name;
- digits 1–2: the last two digits of the birth year; 3–4: the birth month, or the month
  plus 50 (both are accepted; nothing is inferred from the difference, nor stored);
  5–6: the day of birth;
- digits 7–8: administrative, any value.

Numbers are only ever compared through their blind index: the number itself is stored
encrypted (DESIGN.md invariant 7).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from rdv.core.crypto import blind_index
from rdv.core.errors import ValidationError

BLIND_INDEX_PURPOSE = "patients.patient.ramq_number"
_FORMAT = re.compile(r"^[A-Z]{4}[0-9]{8}$")
_SEQUENCE = re.compile(r"^[0-9]{2}$")
# Letters NFKD does not decompose, spelled out as in French.
_LIGATURES = str.maketrans({"Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae"})
MONTH_OFFSET = 50


def normalise_ramq(text: str) -> str:
    """The number as printed on the card, without spaces and in capitals."""
    return "".join(text.split()).upper()


def ramq_letters(name: str) -> str:
    """Only the letters A–Z of `name`, accents stripped, in capitals ("Côté" → "COTE")."""
    decomposed = unicodedata.normalize("NFKD", name.translate(_LIGATURES))
    return "".join(c for c in decomposed.upper() if "A" <= c <= "Z")


def expected_letters(*, last_name_at_birth: str, first_name: str) -> str:
    """The four letters a number must start with for this person."""
    surname = ramq_letters(last_name_at_birth)[:3].ljust(3, "X")
    given = ramq_letters(first_name)[:1] or "X"
    return surname + given


def _fail(message: Promise, code: str) -> ValidationError:
    return ValidationError(message, field="ramq_number", code=code)


def _check_letters(number: str, *, last_name_at_birth: str, first_name: str) -> None:
    expected = expected_letters(last_name_at_birth=last_name_at_birth, first_name=first_name)
    if number[:3] != expected[:3]:
        raise _fail(
            _(
                "The first three letters of the health insurance number must be the first "
                "three letters of the surname at birth."
            ),
            "ramq_surname_mismatch",
        )
    if number[3] != expected[3]:
        raise _fail(
            _(
                "The fourth letter of the health insurance number must be the first letter "
                "of the first name."
            ),
            "ramq_first_name_mismatch",
        )


def _check_birth_date(number: str, date_of_birth: date) -> None:
    year, month, day = int(number[4:6]), int(number[6:8]), int(number[8:10])
    if year != date_of_birth.year % 100:
        raise _fail(
            _("The health insurance number does not match the year of birth."),
            "ramq_year_mismatch",
        )
    if month not in (date_of_birth.month, date_of_birth.month + MONTH_OFFSET):
        raise _fail(
            _("The health insurance number does not match the month of birth."),
            "ramq_month_mismatch",
        )
    if day != date_of_birth.day:
        raise _fail(
            _("The health insurance number does not match the day of birth."),
            "ramq_day_mismatch",
        )


def check_ramq_format(number: str) -> str:
    """The normalised number if it has a health insurance number's shape (to look a person
    up by it); ValidationError on `ramq_number` otherwise."""
    normalised = normalise_ramq(number)
    if not _FORMAT.match(normalised):
        raise ValidationError(
            _("A health insurance number is 4 letters followed by 8 digits."),
            field="ramq_number",
            code="ramq_format",
        )
    return normalised


def validate_ramq(
    number: str, *, last_name_at_birth: str, first_name: str, date_of_birth: date
) -> str:
    """The normalised number if it fits this person; ValidationError naming the first
    rule it breaks otherwise (format, surname letters, first-name letter, year, month,
    day). The administrative digits are not checked: the RAMQ assigns them."""
    normalised = normalise_ramq(number)
    if not _FORMAT.match(normalised):
        raise _fail(
            _("A health insurance number is 4 letters followed by 8 digits."), "ramq_format"
        )
    _check_letters(normalised, last_name_at_birth=last_name_at_birth, first_name=first_name)
    _check_birth_date(normalised, date_of_birth)
    return normalised


def validate_card_sequence_number(text: str) -> str:
    """The card's 2-digit sequence number, or "" when not given; ValidationError otherwise."""
    normalised = "".join(text.split())
    if normalised and not _SEQUENCE.match(normalised):
        raise ValidationError(
            _("The card's sequence number is 2 digits."),
            field="card_sequence_number",
            code="card_sequence_format",
        )
    return normalised


def ramq_blind_index(number: str) -> str:
    """The blind index of a number, however it was typed (spaces, lower case)."""
    return blind_index(normalise_ramq(number), purpose=BLIND_INDEX_PURPOSE)
