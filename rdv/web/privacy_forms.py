"""What the privacy pages accept. Forms only parse; rdv.accounts.privacy decides."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class DeleteAccountForm(forms.Form):
    password = forms.CharField(
        label=_("Your password"),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    confirm = forms.BooleanField(
        label=_(
            "I understand that my account will be deleted, that my upcoming appointments "
            "will be cancelled, and that this cannot be undone."
        ),
        error_messages={"required": _("Tick the box to confirm that you want to delete it.")},
    )
