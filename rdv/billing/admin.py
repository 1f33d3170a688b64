"""The platform admin's read-only view of payments and refunds: a failed refund stays
listed here (filter "Refund failed") until someone settles it in Stripe's dashboard."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rdv.billing.models import Payment, Refund


class ReadOnly:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnly, admin.ModelAdmin[Payment]):
    # No client secret: it lets a browser pay, and nobody here needs it.
    list_display = ("pk", "receipt_number", "status", "provider", "total_cents", "created_at")
    list_filter = ("status", "provider")
    show_facets = admin.ShowFacets.ALWAYS
    search_fields = ("receipt_number", "provider_ref")
    fields = (
        "account",
        "provider",
        "provider_ref",
        "status",
        "price_cents",
        "gst_cents",
        "qst_cents",
        "total_cents",
        "created_at",
        "paid_at",
        "receipt_number",
        "last_error",
    )
    readonly_fields = fields
    ordering = ("-created_at",)


@admin.register(Refund)
class RefundAdmin(ReadOnly, admin.ModelAdmin[Refund]):
    list_display = ("pk", "payment", "status", "reason", "amount_cents", "attempts", "due_at")
    list_filter = ("status", "reason")
    show_facets = admin.ShowFacets.ALWAYS
    search_fields = ("provider_ref", "payment__receipt_number")
    fields = (
        "payment",
        "amount_cents",
        "reason",
        "status",
        "provider_ref",
        "created_at",
        "completed_at",
        "attempts",
        "due_at",
        "last_error",
    )
    readonly_fields = fields
    ordering = ("-created_at",)
