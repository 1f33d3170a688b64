"""Money in cents (CAD), Quebec's sales taxes, and amounts as people read them.

GST (TPS, federal, 5 %) and QST (TVQ, Quebec, 9.975 %) are each computed on the pre-tax
price and rounded half-up to the cent separately; QST is not charged on GST (since 2013).
18.95 $ → 0.95 $ GST + 1.89 $ QST = 21.79 $.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings

GST_RATE = Decimal("0.05")
QST_RATE = Decimal("0.09975")

# U+202F NARROW NO-BREAK SPACE: the Office québécois de la langue française's spacing
# before "$" (and as thousands separator), so "21,79 $" never breaks across lines.
NNBSP = "\u202f"


@dataclass(frozen=True)
class Price:
    """A price and its taxes, in cents; total_cents is always their sum."""

    price_cents: int
    gst_cents: int
    qst_cents: int
    total_cents: int


def tax_cents(price_cents: int, rate: Decimal) -> int:
    """One tax on a pre-tax price, rounded half-up to the cent (0.5 ¢ goes up)."""
    return int((Decimal(price_cents) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def price_with_taxes(price_cents: int) -> Price:
    """The price with GST and QST, each on the pre-tax price: 1895 → 95 + 189 → 2179."""
    if price_cents < 0:
        raise ValueError("a price cannot be negative")
    gst = tax_cents(price_cents, GST_RATE)
    qst = tax_cents(price_cents, QST_RATE)
    return Price(
        price_cents=price_cents,
        gst_cents=gst,
        qst_cents=qst,
        total_cents=price_cents + gst + qst,
    )


def finder_price() -> Price:
    """The appointment finder's price today (settings.FINDER_PRICE_CENTS) with its taxes."""
    return price_with_taxes(settings.FINDER_PRICE_CENTS)


def format_cad(cents: int, language: str) -> str:
    """An amount as a person in Quebec reads it: fr "1 234,56 $" (narrow no-break spaces),
    en "$1,234.56". A negative amount (a refund line) carries a leading minus."""
    sign = "-" if cents < 0 else ""
    dollars, rest = divmod(abs(cents), 100)
    if language.lower().startswith("en"):
        return f"{sign}${dollars:,}.{rest:02d}"
    grouped = f"{dollars:,}".replace(",", NNBSP)
    return f"{sign}{grouped},{rest:02d}{NNBSP}$"
