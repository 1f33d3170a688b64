"""Health data is encrypted in its column (DESIGN.md invariant 7), on both databases.

Marie's story: Marie Tremblay, born 1988-04-12, health insurance number TREM 8804 1211,
phone 450 555-0142, books Dr Roy for a sore throat and cancels another visit because she
feels better.
"""

from __future__ import annotations

import base64
import os
from datetime import date
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from rdv.core import crypto
from rdv.core.crypto import DecryptionError
from rdv.core.errors import ValidationError
from rdv.core.fields import EncryptedField, EncryptedLookupError
from rdv.core.management.commands.rotate_keys import ColumnRotation, Tally, encrypted_columns
from rdv.patients.models import Patient
from rdv.patients.queries import patients_with_ramq
from rdv.patients.services import set_health_card
from rdv.scheduling import services as scheduling
from rdv.scheduling.models import Appointment
from tests.conftest import Cast, local, make_slot

RAMQ = "TREM88041211"
BORN = date(1988, 4, 12)
REASON = "Mal de gorge depuis trois jours"
CANCELLATION = "Je me sens mieux"
SECRETS_OF_MARIE = [
    RAMQ,
    "TREM 8804 1211",
    "88041211",
    "1988-04-12",
    "19880412",
    "1988/04/12",
    "12/04/1988",
    "04/12/1988",
    "12-04-1988",
    "880412",
    "5550142",
    "555-0142",
]


def new_key(kid: str) -> str:
    return f"{kid}:{base64.urlsafe_b64encode(os.urandom(32)).decode()}"


def raw_row(table: str, pk: int) -> dict[str, Any]:
    """The row as the database stores it, read without the ORM's fields."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM {connection.ops.quote_name(table)} WHERE id = %s",  # noqa: S608 (our own table name)
            [pk],
        )
        columns = [column[0] for column in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


def raw_update(table: str, pk: int, column: str, value: str) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(table)} SET {quote(column)} = %s WHERE id = %s",  # noqa: S608 (our own names)
            [value, pk],
        )


def all_tokens() -> list[str]:
    """Every non-empty value of every encrypted column, as stored."""
    tokens: list[str] = []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for model, field in encrypted_columns():
            assert field.column is not None
            cursor.execute(
                f"SELECT {quote(field.column)} FROM {quote(model._meta.db_table)}"  # noqa: S608 (our own names)
            )
            tokens += [value for (value,) in cursor.fetchall() if value]
    return tokens


def _marie(cast: Cast) -> Patient:
    Patient.objects.filter(pk=cast.marie_self.pk).update(
        last_name="Tremblay", date_of_birth=BORN, phone="+1 450 555-0142"
    )
    cast.marie_self.refresh_from_db()
    return set_health_card(
        patient=cast.marie_self, ramq_number="TREM 8804 1211", card_sequence_number="01"
    )


@pytest.fixture
def marie(cast: Cast) -> Patient:
    """Marie as in the story, with her health card recorded."""
    return _marie(cast)


def _appointments(cast: Cast) -> tuple[Appointment, Appointment]:
    """One booked with a reason, one cancelled with a reason."""
    first = make_slot(cast.dr_roy, local(2026, 11, 25, 9, 0))
    # Another type: one health card holds one upcoming appointment per type.
    second = make_slot(cast.dr_roy, local(2026, 11, 26, 9, 0), appointment_type="follow_up")
    booked = scheduling.book_appointment(user=cast.marie, slot_id=first.pk, reason=REASON)
    other = scheduling.book_appointment(user=cast.marie, slot_id=second.pk, reason="Suivi")
    cancelled = scheduling.cancel_appointment(
        user=cast.marie, appointment_id=other.pk, reason=CANCELLATION
    )
    return booked, cancelled


@pytest.fixture
def appointments(cast: Cast) -> tuple[Appointment, Appointment]:
    return _appointments(cast)


def test_health_data_comes_back_as_it_was_written(marie: Patient) -> None:
    again = Patient.objects.get(pk=marie.pk)
    assert again.date_of_birth == BORN
    assert isinstance(again.date_of_birth, date)
    assert again.ramq_number == RAMQ
    assert again.card_sequence_number == "01"
    assert again.phone == "+1 450 555-0142"
    assert again.last_name == "Tremblay"


def test_a_raw_read_of_the_patient_row_finds_no_health_data(marie: Patient) -> None:
    row = raw_row("patients_patient", marie.pk)
    for column in ("date_of_birth", "ramq_number", "card_sequence_number", "phone"):
        assert row[column].startswith(f"v1.{crypto.key_ring().primary_kid}.")
    stored = repr(row)
    for secret in SECRETS_OF_MARIE:
        assert secret not in stored
    assert len(row["ramq_blind_index"]) == 64


def test_a_raw_read_of_the_appointment_rows_finds_no_reason(
    appointments: tuple[Appointment, Appointment],
) -> None:
    booked, cancelled = appointments
    assert Appointment.objects.get(pk=booked.pk).reason == REASON
    assert Appointment.objects.get(pk=cancelled.pk).cancellation_reason == CANCELLATION
    stored = repr(raw_row("scheduling_appointment", booked.pk)) + repr(
        raw_row("scheduling_appointment", cancelled.pk)
    )
    for secret in (REASON, "gorge", CANCELLATION, "mieux", "Suivi"):
        assert secret not in stored


def test_a_tampered_ciphertext_is_refused(marie: Patient) -> None:
    token = raw_row("patients_patient", marie.pk)["ramq_number"]
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    raw_update("patients_patient", marie.pk, "ramq_number", flipped)
    with pytest.raises(DecryptionError) as caught:
        Patient.objects.get(pk=marie.pk)
    assert RAMQ not in str(caught.value)


def test_a_ciphertext_moved_to_another_column_is_refused(
    marie: Patient, appointments: tuple[Appointment, Appointment]
) -> None:
    phone = raw_row("patients_patient", marie.pk)["phone"]
    raw_update("patients_patient", marie.pk, "ramq_number", phone)
    with pytest.raises(DecryptionError, match=r"patients\.patient\.ramq_number"):
        Patient.objects.get(pk=marie.pk)

    _, cancelled = appointments
    reason = raw_row("scheduling_appointment", cancelled.pk)["reason"]
    raw_update("scheduling_appointment", cancelled.pk, "cancellation_reason", reason)
    with pytest.raises(DecryptionError, match="another column"):
        Appointment.objects.get(pk=cancelled.pk)


def test_a_plaintext_left_in_an_encrypted_column_is_refused_not_returned(marie: Patient) -> None:
    raw_update("patients_patient", marie.pk, "phone", "450 555-0142")
    with pytest.raises(DecryptionError) as caught:
        Patient.objects.get(pk=marie.pk)
    assert "555" not in str(caught.value)


@pytest.mark.parametrize(
    "lookup",
    [
        {"ramq_number": RAMQ},
        {"ramq_number__iexact": RAMQ},
        {"date_of_birth": BORN},
        {"date_of_birth__year": 1988},
        {"date_of_birth__gte": BORN},
        {"phone__contains": "555"},
    ],
)
def test_encrypted_columns_cannot_be_compared(marie: Patient, lookup: dict[str, Any]) -> None:
    with pytest.raises(EncryptedLookupError, match="blind index"):
        Patient.objects.filter(**lookup).exists()


def test_encrypted_columns_can_be_checked_for_null(
    appointments: tuple[Appointment, Appointment],
) -> None:
    with pytest.raises(EncryptedLookupError):
        Appointment.objects.filter(reason__icontains="gorge").exists()
    assert Appointment.objects.filter(reason__isnull=False).count() == 2


@pytest.mark.parametrize("typed", ["TREM 8804 1211", "trem88041211", " trem 8804 1211 "])
def test_a_patient_is_found_by_health_insurance_number_however_it_is_typed(
    marie: Patient, typed: str
) -> None:
    assert list(patients_with_ramq(typed)) == [marie]


def test_another_number_finds_nobody(marie: Patient) -> None:
    assert not patients_with_ramq("TREM88041212").exists()
    assert not patients_with_ramq("").exists()


def test_a_wrong_health_card_writes_nothing(cast: Cast) -> None:
    with pytest.raises(ValidationError) as caught:
        set_health_card(
            patient=cast.paul_self, ramq_number="TREM88041211", card_sequence_number="01"
        )
    assert caught.value.code == "ramq_surname_mismatch"
    with pytest.raises(ValidationError):
        set_health_card(
            patient=cast.paul_self, ramq_number="PATP80010111", card_sequence_number="1"
        )
    paul = Patient.objects.get(pk=cast.paul_self.pk)
    assert (paul.ramq_number, paul.card_sequence_number, paul.ramq_blind_index) == ("", "", "")


def test_the_surname_at_birth_wins_over_the_current_one(cast: Cast) -> None:
    Patient.objects.filter(pk=cast.paul_self.pk).update(last_name_at_birth="Gagnon")
    paul = set_health_card(
        patient=cast.paul_self, ramq_number="GAGP 8001 0111", card_sequence_number=""
    )
    assert paul.ramq_number == "GAGP80010111"
    assert list(patients_with_ramq("gagp80010111")) == [paul]


# --- Key rotation ---------------------------------------------------------------------

K1 = new_key("k1")
K2 = new_key("k2")


@pytest.fixture
def only_k1(settings: Any) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [K1]
    crypto.clear_caches()  # also done on setting_changed; explicit, as the test relies on it


@pytest.fixture
def written_under_k1(only_k1: None, cast: Cast) -> Cast:
    """Every kind of encrypted value, written while k1 was the only key (the cast too:
    `only_k1` is set up before it)."""
    _marie(cast)
    _appointments(cast)
    return cast


def _readable_values() -> list[tuple[Any, ...]]:
    patients = Patient.objects.order_by("pk").values_list(
        "date_of_birth", "ramq_number", "card_sequence_number", "phone"
    )
    appointments = Appointment.objects.order_by("pk").values_list("reason", "cancellation_reason")
    return [*patients, *appointments]


def test_rotation_moves_everything_to_the_new_key_then_the_old_key_can_go(
    written_under_k1: Cast, settings: Any
) -> None:
    before = _readable_values()
    tokens = all_tokens()
    assert {token.split(".")[1] for token in tokens} == {"k1"}

    settings.FIELD_ENCRYPTION_KEYS = [K2, K1]
    crypto.clear_caches()
    out = StringIO()
    call_command("rotate_keys", "--batch-size", "2", stdout=out)
    assert f"Total under key 'k2': {len(tokens)} re-encrypted, 0 changed meanwhile" in (
        out.getvalue()
    )
    assert {token.split(".")[1] for token in all_tokens()} == {"k2"}

    settings.FIELD_ENCRYPTION_KEYS = [K2]
    crypto.clear_caches()
    assert _readable_values() == before

    again = StringIO()
    call_command("rotate_keys", stdout=again)
    assert "Total under key 'k2': 0 re-encrypted" in again.getvalue()


def test_without_the_old_key_nothing_written_under_it_can_be_read(
    written_under_k1: Cast, settings: Any
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [K2]
    crypto.clear_caches()
    with pytest.raises(DecryptionError, match="'k1' is not in"):
        _readable_values()
    err = StringIO()
    with pytest.raises(CommandError, match="could not be decrypted"):
        call_command("rotate_keys", stdout=StringIO(), stderr=err)
    assert "'k1' is not in FIELD_ENCRYPTION_KEYS" in err.getvalue()
    assert RAMQ not in err.getvalue()


def test_rotation_never_overwrites_a_value_written_meanwhile(
    written_under_k1: Cast, settings: Any
) -> None:
    settings.FIELD_ENCRYPTION_KEYS = [K2, K1]
    crypto.clear_caches()
    phone = Patient._meta.get_field("phone")
    assert isinstance(phone, EncryptedField)
    rotation = ColumnRotation(Patient, phone, crypto.key_ring(), batch_size=10)
    [(pk, old_token)] = rotation.stale_batch(None)

    marie = Patient.objects.get(pk=pk)
    marie.phone = "+1 514 555-0199"  # a patient edits her phone while the rotation runs
    marie.save()
    tally, unreadable = Tally(), list[str]()
    rotation.rotate_row(pk, old_token, tally, log_unreadable=unreadable.append)

    assert (tally.rotated, tally.changed_meanwhile, unreadable) == (0, 1, [])
    assert Patient.objects.get(pk=pk).phone == "+1 514 555-0199"
