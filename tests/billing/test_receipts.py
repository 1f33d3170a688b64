"""The receipt PDF, read back with poppler's pdftotext as a person would read it."""

from __future__ import annotations

import shutil
import subprocess  # nosec B404 (tests only: poppler's pdftotext on our own PDF)
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction

from rdv.billing import services
from rdv.billing.models import Payment
from rdv.billing.receipts import receipt_pdf
from rdv.core.errors import ValidationError
from rdv.core.money import NNBSP
from tests.billing.conftest import new_payment
from tests.conftest import Cast

pytestmark = pytest.mark.django_db


def text_of(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "recu.pdf"
    path.write_bytes(pdf)
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "poppler-utils is needed for this test"
    out = subprocess.run(  # noqa: S603  # nosec B603
        [pdftotext, "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout
    return out.replace(NNBSP, " ").replace("\u00a0", " ")


def paid(cast: Cast) -> Payment:
    payment = new_payment(cast.marie)
    services.pay_with_test_provider(account=cast.marie, payment_id=payment.pk, succeed=True)
    return Payment.objects.get(pk=payment.pk)


def test_the_receipt_shows_21_79_and_both_registration_numbers(
    cast: Cast, tmp_path: Path, settings: Any
) -> None:
    settings.GST_REGISTRATION_NUMBER = "987654321 RT0001"
    settings.QST_REGISTRATION_NUMBER = "1209876543 TQ0001"
    payment = paid(cast)
    text = text_of(receipt_pdf(payment), tmp_path)
    assert payment.receipt_number is not None
    assert payment.receipt_number in text
    assert "Reçu" in text
    assert "RDV Santé" in text
    assert "Recherche de rendez-vous" in text
    assert "18,95 $" in text
    assert "0,95 $" in text
    assert "1,89 $" in text
    assert "21,79 $" in text
    assert "987654321 RT0001" in text
    assert "1209876543 TQ0001" in text
    assert "TPS" in text
    assert "TVQ" in text
    assert "2026-11-23 08:00" in text  # paid at the frozen time, in Quebec time
    assert "Remboursé" not in text
    assert "Receipt" not in text  # language="fr": French alone


def test_the_english_receipt_comes_after_the_french(cast: Cast, tmp_path: Path) -> None:
    text = text_of(receipt_pdf(paid(cast), language="en"), tmp_path)
    assert text.index("Reçu") < text.index("Receipt")
    assert "Appointment finder" in text
    assert "$21.79" in text
    assert "GST" in text
    assert "QST" in text


def test_a_refunded_payment_says_so(cast: Cast, tmp_path: Path) -> None:
    payment = paid(cast)
    with transaction.atomic():
        services.request_refund(payment, reason="deadline")
    services.process_due_refunds()
    text = text_of(receipt_pdf(Payment.objects.get(pk=payment.pk), language="en"), tmp_path)
    assert "Remboursé" in text
    assert "-21,79 $" in text
    assert "Refunded" in text


def test_an_unpaid_payment_has_no_receipt(cast: Cast) -> None:
    with pytest.raises(ValidationError):
        receipt_pdf(new_payment(cast.marie))
