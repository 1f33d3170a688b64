"""RAMQ numbers: each rule, its own message in French and English, and a property test."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import date

import pytest
from django.utils import translation
from hypothesis import assume, given
from hypothesis import strategies as st

from rdv.core.errors import ValidationError
from rdv.patients.ramq import (
    expected_letters,
    normalise_ramq,
    validate_card_sequence_number,
    validate_ramq,
)


@dataclass(frozen=True)
class Case:
    """A person and the number the rules give them."""

    last_name_at_birth: str
    first_name: str
    date_of_birth: date
    number: str

    def validate(self, number: str) -> str:
        return validate_ramq(
            number,
            last_name_at_birth=self.last_name_at_birth,
            first_name=self.first_name,
            date_of_birth=self.date_of_birth,
        )


MARIE = Case("Tremblay", "Marie", date(1988, 4, 12), number="TREM88041211")


def test_normalising_removes_spaces_and_capitalises() -> None:
    assert normalise_ramq(" trem 8804\t1211 ") == "TREM88041211"


@pytest.mark.parametrize("number", ["TREM 8804 1211", "trem88041211", "TREM 8854 1299"])
def test_marie_s_number_is_accepted_with_month_or_month_plus_50(number: str) -> None:
    assert MARIE.validate(number) == normalise_ramq(number)


@pytest.mark.parametrize(
    ("surname", "first_name", "letters"),
    [
        ("Côté", "Émilie", "COTE"),
        ("St-Pierre", "Jean", "STPJ"),
        ("D'Amours", "Ève", "DAME"),
        ("Li", "Wei", "LIXW"),
        ("Œuvrard", "Zoé", "OEUZ"),
        ("Ng", "", "NGXX"),
    ],
)
def test_letters_come_from_the_surname_at_birth_and_the_first_name(
    surname: str, first_name: str, letters: str
) -> None:
    assert expected_letters(last_name_at_birth=surname, first_name=first_name) == letters


FAILURES = [
    (
        "TREM880412",
        "ramq_format",
        "A health insurance number is 4 letters followed by 8 digits.",
        "Un numéro d’assurance maladie compte 4 lettres suivies de 8 chiffres.",
    ),
    (
        "TRAM88041211",
        "ramq_surname_mismatch",
        "The first three letters of the health insurance number must be the first three "
        "letters of the surname at birth.",
        "Les trois premières lettres du numéro d’assurance maladie doivent être les trois "
        "premières lettres du nom de famille à la naissance.",
    ),
    (
        "TREJ88041211",
        "ramq_first_name_mismatch",
        "The fourth letter of the health insurance number must be the first letter of the "
        "first name.",
        "La quatrième lettre du numéro d’assurance maladie doit être la première lettre du prénom.",
    ),
    (
        "TREM89041211",
        "ramq_year_mismatch",
        "The health insurance number does not match the year of birth.",
        "Le numéro d’assurance maladie ne correspond pas à l’année de naissance.",
    ),
    (
        "TREM88051211",
        "ramq_month_mismatch",
        "The health insurance number does not match the month of birth.",
        "Le numéro d’assurance maladie ne correspond pas au mois de naissance.",
    ),
    (
        "TREM88041311",
        "ramq_day_mismatch",
        "The health insurance number does not match the day of birth.",
        "Le numéro d’assurance maladie ne correspond pas au jour de naissance.",
    ),
]


@pytest.mark.parametrize(("number", "code", "english", "french"), FAILURES)
def test_each_broken_rule_has_its_own_message_in_both_languages(
    number: str, code: str, english: str, french: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        MARIE.validate(number)
    assert caught.value.code == code
    assert caught.value.field == "ramq_number"
    with translation.override("en"):
        assert str(caught.value.message) == english
    with translation.override("fr"):
        assert str(caught.value.message) == french


def test_no_two_rules_share_a_message_or_a_code() -> None:
    for column in (1, 2, 3):
        assert len({failure[column] for failure in FAILURES}) == len(FAILURES)


def test_a_month_beyond_month_plus_50_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        MARIE.validate("TREM88641211")
    assert caught.value.code == "ramq_month_mismatch"


@pytest.mark.parametrize("text", ["", "01", " 0 2 "])
def test_card_sequence_number_is_two_digits_or_nothing(text: str) -> None:
    assert validate_card_sequence_number(text) == "".join(text.split())


@pytest.mark.parametrize("text", ["1", "123", "A1"])
def test_card_sequence_number_of_another_shape_is_refused(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_card_sequence_number(text)
    assert caught.value.field == "card_sequence_number"
    with translation.override("fr"):
        assert str(caught.value.message) == "Le numéro séquentiel de la carte compte 2 chiffres."
    with translation.override("en"):
        assert str(caught.value.message) == "The card's sequence number is 2 digits."


# The rule stated again, independently of the code: (what is typed, the letter it counts as).
_ACCENTED = {"É": "E", "é": "E", "è": "E", "ê": "E", "ë": "E", "à": "A", "â": "A", "ç": "C"}
_ACCENTED |= {"Ç": "C", "ô": "O", "Ô": "O", "î": "I", "ï": "I", "û": "U", "ü": "U", "Î": "I"}
_LETTERS = [(c, c.upper()) for c in string.ascii_letters] + list(_ACCENTED.items())
_SEPARATORS = [(c, "") for c in "- '’."]
names = st.lists(
    st.one_of(st.sampled_from(_LETTERS), st.sampled_from(_SEPARATORS)), min_size=1, max_size=14
)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    surname, given_name = draw(names), draw(names)
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)))
    month = born.month + draw(st.sampled_from([0, 50]))
    surname_letters = "".join(letter for _, letter in surname)
    given_letters = "".join(letter for _, letter in given_name)
    number = (
        surname_letters[:3].ljust(3, "X")
        + (given_letters[:1] or "X")
        + f"{born.year % 100:02d}{month:02d}{born.day:02d}"
        + f"{draw(st.integers(min_value=0, max_value=99)):02d}"
    )
    return Case(
        last_name_at_birth="".join(typed for typed, _ in surname),
        first_name="".join(typed for typed, _ in given_name),
        date_of_birth=born,
        number=number,
    )


@given(case=cases(), data=st.data())
def test_a_number_built_by_the_rules_validates_and_any_changed_letter_or_birth_digit_fails(
    case: Case, data: st.DataObject
) -> None:
    number = case.number
    assert case.validate(number) == number
    assert case.validate(f"{number[:4]} {number[4:8]} {number[8:]}".lower()) == number

    position = data.draw(st.integers(min_value=0, max_value=9), label="position")
    alphabet = string.ascii_uppercase if position < 4 else string.digits
    replacement = data.draw(st.sampled_from(alphabet).filter(lambda c: c != number[position]))
    changed = number[:position] + replacement + number[position + 1 :]
    if position in (6, 7):  # month ↔ month + 50 is the one change the rules allow
        month = case.date_of_birth.month
        assume(int(changed[6:8]) not in (month, month + 50))
    with pytest.raises(ValidationError):
        case.validate(changed)
