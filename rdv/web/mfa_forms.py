"""What the authenticator-app page accepts. Forms only parse; rdv.accounts.mfa decides."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _


def _password() -> forms.CharField:
    return forms.CharField(
        label=_("Your password"),
        help_text=_("To be sure it is you before changing how you sign in."),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _current_code() -> forms.CharField:
    return forms.CharField(
        label=_("Code from your authenticator app, or a recovery code"),
        help_text=_("You already have a second factor: prove it to change your factors."),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )


class BeginForm(forms.Form):
    """Start setting up an authenticator: the password, and a current second factor for
    someone who already has one (the same step-up the API asks for)."""

    password = _password()

    def __init__(self, *args: Any, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if needs_code:
            self.fields["otp"] = _current_code()


class ConfirmForm(forms.Form):
    """The first code the new authenticator shows."""

    code = forms.CharField(
        label=_("6-digit code shown by the app"),
        max_length=12,  # room for "123 456" typed with spaces
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "size": 8}
        ),
    )

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"].replace(" ", "")
        if len(code) != 6 or not code.isascii() or not code.isdigit():
            raise forms.ValidationError(_("Enter the 6 digits shown by your authenticator app."))
        return code


class RecoveryCodesForm(forms.Form):
    """New recovery codes: the password and a current second factor."""

    password = _password()
    otp = _current_code()
