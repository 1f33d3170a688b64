"""Password rules (NIST SP 800-63B): long enough, not common, not the person's own name.
No composition rules: a few lowercase words are a fine password."""

from __future__ import annotations

import pytest
from django.contrib.auth.password_validation import password_validators_help_texts
from django.contrib.auth.password_validation import validate_password as django_validate
from django.core.exceptions import ValidationError
from django.utils import translation

from rdv.accounts.models import User
from rdv.accounts.validators import PasswordLengthValidator
from tests.conftest import Cast


def problems(password: str, user: User | None = None) -> list[str]:
    try:
        django_validate(password, user)
    except ValidationError as error:
        return [e.code or "" for e in error.error_list]
    return []


def test_patients_need_ten_characters(cast: Cast) -> None:
    assert problems("lune soleil"[:9], cast.marie) == ["password_too_short"]
    assert problems("lune solei", cast.marie) == []


def test_clinic_staff_need_twelve_characters(cast: Cast) -> None:
    for staff in (cast.sophie, cast.marc, cast.karim):
        assert problems("lune soleil", staff) == ["password_too_short"]
        assert problems("lune soleil!", staff) == []


def test_platform_admins_count_as_staff(cast: Cast) -> None:
    cast.paul.is_staff = True
    assert problems("lune soleil", cast.paul) == ["password_too_short"]


def test_a_new_account_not_yet_saved_is_held_to_the_patient_rule() -> None:
    assert problems("lune solei", User(email="new@example.test")) == []
    assert problems("lune solei", None) == []


def test_at_most_256_characters(cast: Cast) -> None:
    assert problems("a b c d " * 32, cast.marie) == []
    assert problems("a b c d " * 32 + "e", cast.marie) == ["password_too_long"]


def test_common_passwords_are_refused_whatever_their_length(cast: Cast) -> None:
    assert problems("qwerty123456", cast.sophie) == ["password_too_common"]
    assert problems("1q2w3e4r5t6y", cast.marie) == ["password_too_common"]


def test_a_password_like_the_persons_email_or_name_is_refused(cast: Cast) -> None:
    cast.sophie.first_name = "Sophie-Anne"
    cast.sophie.last_name = "Gagnon-Lapointe"
    assert "password_too_similar" in problems("sophie@example.test", cast.sophie)
    assert "password_too_similar" in problems("gagnon-lapointe", cast.sophie)


def test_no_composition_rules(cast: Cast) -> None:
    assert problems("correct horse battery staple", cast.sophie) == []
    assert problems("étédéchaînéàmontréal", cast.sophie) == []


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("fr", "au moins 10 caractères (12 pour le personnel des cliniques)"),
        ("en", "at least 10 characters (12 for clinic staff)"),
    ],
)
def test_the_rules_are_explained_in_french_and_english(language: str, text: str) -> None:
    with translation.override(language):
        assert any(text in help_text for help_text in password_validators_help_texts())


@pytest.mark.parametrize(
    ("language", "text"),
    [("fr", "au moins 12 caractères"), ("en", "at least 12 characters")],
)
def test_a_short_password_is_explained_in_french_and_english(
    cast: Cast, language: str, text: str
) -> None:
    with translation.override(language), pytest.raises(ValidationError) as refused:
        PasswordLengthValidator().validate("short one", cast.sophie)
    assert text in refused.value.messages[0]
