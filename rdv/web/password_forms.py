"""What the password-reset and passkey pages accept. Forms only parse; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.accounts.passkeys import NAME_MAX_LENGTH


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )


class NewPasswordForm(forms.Form):
    new_password = forms.CharField(
        label=_("New password"),
        help_text=_("At least 10 characters. A short sentence is easy to remember."),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password_again = forms.CharField(
        label=_("New password, again"),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("new_password"), data.get("new_password_again")
        if first and second and first != second:
            self.add_error("new_password_again", _("The two passwords are not the same."))
        return data


class PasskeyNameForm(forms.Form):
    """The page's "add a passkey" form; the script sends it with the ceremony."""

    password = forms.CharField(
        label=_("Your password"),
        help_text=_("To be sure it is you before adding a way to sign in."),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    name = forms.CharField(
        label=_("Name of this passkey"),
        help_text=_("So that you can recognise it later, e.g. “My phone”."),
        max_length=NAME_MAX_LENGTH,
        required=False,
    )
    otp = forms.CharField(
        label=_("Code from your authenticator app, or a recovery code"),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code"}),
    )

    def __init__(self, *args: Any, needs_code: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not needs_code:
            del self.fields["otp"]
        else:
            self.fields["otp"].required = True


class RegistrationBeginForm(forms.Form):
    password = forms.CharField(max_length=256, strip=False)
    otp = forms.CharField(max_length=20, required=False)


class SignInFinishForm(forms.Form):
    """The browser's answer to a challenge: its id and the credential, as JSON."""

    challenge_id = forms.CharField(max_length=64)
    credential = forms.JSONField()

    def clean_credential(self) -> dict[str, Any]:
        credential = self.cleaned_data["credential"]
        if not isinstance(credential, dict):
            raise forms.ValidationError(_("This passkey could not be read."))
        return credential


class RegistrationFinishForm(SignInFinishForm):
    name = forms.CharField(max_length=NAME_MAX_LENGTH, required=False)
