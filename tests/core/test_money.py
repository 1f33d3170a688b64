"""Quebec's two sales taxes, each on the pre-tax price, rounded half-up to the cent."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rdv.core.money import (
    GST_RATE,
    NNBSP,
    QST_RATE,
    Price,
    finder_price,
    format_cad,
    price_with_taxes,
)


def test_the_finder_price_of_18_95_comes_to_21_79() -> None:
    assert price_with_taxes(1895) == Price(
        price_cents=1895, gst_cents=95, qst_cents=189, total_cents=2179
    )


def test_finder_price_follows_the_setting(settings: Any) -> None:
    assert finder_price().total_cents == 2179
    settings.FINDER_PRICE_CENTS = 2000
    assert finder_price() == Price(2000, 100, 200, 2300)  # 199.5 ¢ of QST rounds up


@pytest.mark.parametrize(
    ("price", "gst", "qst"),
    [
        (10, 1, 1),  # GST 0.5 ¢ exactly → 1 ¢ (half-up, not banker's 0)
        (30, 2, 3),  # GST 1.5 ¢ → 2; QST 2.9925 ¢ → 3
        (50, 3, 5),  # GST 2.5 ¢ → 3 (banker's rounding would give 2)
        (200, 10, 20),  # QST 19.95 ¢ → 20
        (400, 20, 40),  # QST 39.9 ¢ → 40
        (0, 0, 0),
    ],
)
def test_half_a_cent_rounds_up(price: int, gst: int, qst: int) -> None:
    taxed = price_with_taxes(price)
    assert (taxed.gst_cents, taxed.qst_cents) == (gst, qst)
    assert taxed.total_cents == price + gst + qst


def test_a_negative_price_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        price_with_taxes(-1)


@given(st.integers(min_value=0, max_value=10_000_000))
def test_each_tax_is_its_rate_on_the_pre_tax_price_rounded_half_up(price: int) -> None:
    taxed = price_with_taxes(price)
    for rate, cents in ((GST_RATE, taxed.gst_cents), (QST_RATE, taxed.qst_cents)):
        exact = Decimal(price) * rate
        assert cents == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        assert abs(Decimal(cents) - exact) <= Decimal("0.5")
    assert taxed.total_cents == taxed.price_cents + taxed.gst_cents + taxed.qst_cents


def test_amounts_read_as_in_quebec() -> None:
    assert format_cad(2179, "fr") == f"21,79{NNBSP}$"
    assert format_cad(2179, "en") == "$21.79"
    assert format_cad(123456, "fr") == f"1{NNBSP}234,56{NNBSP}$"
    assert format_cad(123456, "en-ca") == "$1,234.56"
    assert format_cad(5, "fr") == f"0,05{NNBSP}$"
    assert format_cad(-2179, "fr") == f"-21,79{NNBSP}$"
