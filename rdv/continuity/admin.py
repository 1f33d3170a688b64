"""The platform admin's read-only switch (one row). Every change goes through
rdv.continuity.services.set_read_only: audited, and seen at once by this process."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.forms import ModelForm
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.continuity.models import ReadOnlySwitch
from rdv.continuity.services import set_read_only

ENVIRONMENT_NOTE = _(
    "READ_ONLY is set in the environment: the platform stays read-only whatever this switch says."
)


def _platform_admin(request: HttpRequest) -> bool:
    user = request.user
    return isinstance(user, User) and user.is_active and user.is_staff


@admin.register(ReadOnlySwitch)
class ReadOnlySwitchAdmin(admin.ModelAdmin[ReadOnlySwitch]):
    list_display = ("__str__", "enabled", "reason", "changed_at", "changed_by")
    fields = ("enabled", "reason", "changed_at", "changed_by", "environment")
    readonly_fields = ("changed_at", "changed_by", "environment")

    @admin.display(description=_("Environment"))
    def environment(self, obj: ReadOnlySwitch | None) -> str:
        if settings.READ_ONLY:
            return str(ENVIRONMENT_NOTE)
        return str(_("READ_ONLY is not set: this switch decides."))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return _platform_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _platform_admin(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One row: added once (id 1), then changed.
        return _platform_admin(request) and not ReadOnlySwitch.objects.filter(pk=1).exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: ReadOnlySwitch, form: ModelForm[Any], change: bool
    ) -> None:
        actor = request.user if isinstance(request.user, User) else None
        saved = set_read_only(obj.enabled, reason=obj.reason, actor=actor)
        # The admin's own messages and history read the saved row.
        obj.pk = saved.pk
        obj.changed_at = saved.changed_at
        obj.changed_by = saved.changed_by
        if settings.READ_ONLY and not obj.enabled:
            self.message_user(request, ENVIRONMENT_NOTE, messages.WARNING)
