"""The platform admin's view of the outbox: counts by status (the filter sidebar), each
message's attempts, and no way to edit what the worker owns."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from rdv.notifications.models import Attempt, Message


class AttemptInline(admin.TabularInline[Attempt, Message]):
    model = Attempt
    fields = ("at", "ok", "provider_id", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin[Message]):
    # No address, no body: the admin sees delivery, not personal data.
    list_display = ("pk", "kind", "channel", "status", "due_at", "attempts", "provider_status")
    list_filter = ("status", "channel", "kind")
    # The counts by status beside each filter, always (not only on request).
    show_facets = admin.ShowFacets.ALWAYS
    fields = (
        "kind",
        "channel",
        "status",
        "due_at",
        "attempts",
        "sent_at",
        "provider_id",
        "provider_status",
        "last_error",
        "appointment",
    )
    readonly_fields = fields
    inlines = (AttemptInline,)
    ordering = ("-due_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
