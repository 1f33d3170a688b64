"""The receipt of a finder payment, as a PDF: French first (Quebec's Charter of the French
language), then English on the same page unless only French is asked for. It carries
what Quebec and Canada require on a receipt for a taxable sale: the seller's name, the
date, what was sold, the price, GST and QST each with the seller's registration number,
and the total."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from rdv.billing.models import Payment, PaymentStatus, RefundStatus
from rdv.clinics.exports import FONT, FONT_FILES
from rdv.core import clock
from rdv.core.errors import ValidationError
from rdv.core.money import format_cad

# The receipt is bilingual by law and custom, not by the reader's language: each label is
# written here in both languages rather than through the .po files.
LABELS = {
    "fr": {
        "title": "Reçu",
        "number": "Numéro de reçu",
        "date": "Date",
        "item": "Recherche de rendez-vous",
        "price": "Prix",
        "gst": "TPS (5 %)",
        "qst": "TVQ (9,975 %)",
        "total": "Total",
        "paid": "Payé",
        "refunded": "Remboursé",
        "gst_no": "No de TPS",
        "qst_no": "No de TVQ",
    },
    "en": {
        "title": "Receipt",
        "number": "Receipt number",
        "date": "Date",
        "item": "Appointment finder",
        "price": "Price",
        "gst": "GST (5%)",
        "qst": "QST (9.975%)",
        "total": "Total",
        "paid": "Paid",
        "refunded": "Refunded",
        "gst_no": "GST No.",
        "qst_no": "QST No.",
    },
}


def receipt_pdf(payment: Payment, *, language: str = "fr") -> bytes:
    """The receipt of a paid payment: French alone (language="fr"), or French then
    English (any other language). Only a paid payment has one."""
    if payment.status != PaymentStatus.SUCCEEDED or payment.paid_at is None:
        raise ValidationError(_("Only a paid payment has a receipt."), code="not_paid")
    pdf = FPDF(orientation="portrait", unit="mm", format="letter")
    for style, path in FONT_FILES.items():
        pdf.add_font(FONT, style, str(path))
    pdf.set_margins(20, 20, 20)
    pdf.set_title(f"Reçu / Receipt {payment.receipt_number}")
    pdf.set_creator(settings.BILLING_LEGAL_NAME)
    pdf.add_page()
    languages = ["fr"] if language == "fr" else ["fr", "en"]
    for index, lang in enumerate(languages):
        if index:
            pdf.ln(8)
            pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
            pdf.ln(8)
        _section(pdf, payment, lang)
    return bytes(pdf.output())


def _section(pdf: FPDF, payment: Payment, lang: str) -> None:
    labels = LABELS[lang]
    paid_at = payment.paid_at.astimezone(clock.LOCAL_TZ)  # type: ignore[union-attr]
    day = paid_at.strftime("%Y-%m-%d %H:%M")
    pdf.set_font(FONT, "B", 16)
    _line(pdf, 9, f"{labels['title']} — {settings.BILLING_LEGAL_NAME}")
    pdf.set_font(FONT, "", 10)
    _line(pdf, 6, f"{labels['number']} : {payment.receipt_number}")
    _line(pdf, 6, f"{labels['date']} : {day}")
    pdf.ln(4)
    rows = [
        (labels["item"], payment.price_cents),
        (labels["gst"], payment.gst_cents),
        (labels["qst"], payment.qst_cents),
    ]
    for label, cents in rows:
        _amount_row(pdf, label, cents, lang)
    pdf.set_font(FONT, "B", 11)
    _amount_row(pdf, labels["total"], payment.total_cents, lang)
    pdf.set_font(FONT, "", 10)
    _amount_row(pdf, labels["paid"], payment.total_cents, lang)
    refund = getattr(payment, "refund", None)
    if refund is not None and refund.status == RefundStatus.SUCCEEDED:
        _amount_row(pdf, labels["refunded"], -refund.amount_cents, lang)
    pdf.ln(4)
    pdf.set_font(FONT, "", 9)
    _line(pdf, 5, f"{labels['gst_no']} : {settings.GST_REGISTRATION_NUMBER}")
    _line(pdf, 5, f"{labels['qst_no']} : {settings.QST_REGISTRATION_NUMBER}")


def _line(pdf: FPDF, height: float, text: str) -> None:
    pdf.cell(0, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _amount_row(pdf: FPDF, label: str, cents: int, lang: str) -> None:
    pdf.cell(120, 7, label)
    pdf.cell(0, 7, format_cad(cents, lang), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
