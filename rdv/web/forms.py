"""What the patient pages accept. Forms only parse; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from rdv.accounts.registration import TERMS_VERSION
from rdv.scheduling.models import AppointmentType

LANGUAGE_CHOICES = [("", _("Any language")), ("fr", "Français"), ("en", "English")]
RADIUS_CHOICES = [(5, "5 km"), (10, "10 km"), (25, "25 km"), (50, "50 km"), (100, "100 km")]


def offer_patients(form: forms.Form, patients: list[tuple[int, str]]) -> None:
    """Limit the form's `patient_id` to the account's own patients, as (id, name)."""
    patient_field = form.fields["patient_id"]
    assert isinstance(patient_field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
    patient_field.choices = patients


class WhereWhenForm(forms.Form):
    """Where, when and what: the part of a search every search page shares."""

    near = forms.CharField(
        label=_("Municipality or postal code"),
        max_length=100,
        widget=forms.TextInput(attrs={"list": "municipalities", "autocomplete": "off"}),
    )
    radius_km = forms.TypedChoiceField(
        label=_("Distance"), choices=RADIUS_CHOICES, coerce=int, initial=25, required=False
    )
    appointment_type = forms.ChoiceField(
        label=_("Type of appointment"),
        choices=[("", _("Any type")), *AppointmentType.choices],
        required=False,
    )
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    language = forms.ChoiceField(
        label=_("Practitioner's language"), choices=LANGUAGE_CHOICES, required=False
    )

    # Names the services use for fields, mapped to this form's fields.
    SERVICE_FIELDS = {"from": "date_from", "to": "date_to", "type": "appointment_type"}

    def add_service_error(self, field: str | None, message: str) -> None:
        name = self.SERVICE_FIELDS.get(field or "", field)
        self.add_error(name if name in self.fields else None, message)


class SearchForm(WhereWhenForm):
    family_doctor = forms.BooleanField(label=_("Only with my family doctor"), required=False)
    patient_id = forms.TypedChoiceField(label=_("For"), coerce=int, required=False, choices=[])
    offset = forms.IntegerField(
        min_value=0, max_value=1000, required=False, widget=forms.HiddenInput
    )
    reschedule = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, patients: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_patients(self, patients)
        if not patients:
            del self.fields["patient_id"]
            del self.fields["family_doctor"]


class FamilySearchForm(WhereWhenForm):
    """Back-to-back times at one clinic for several of the account's people."""

    patients = forms.TypedMultipleChoiceField(
        label=_("Who is coming?"), coerce=int, widget=forms.CheckboxSelectMultiple
    )

    field_order = ("patients",)
    SERVICE_FIELDS = {**WhereWhenForm.SERVICE_FIELDS, "patients": "patients"}

    def __init__(self, *args: Any, patients: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["patients"]
        assert isinstance(field, forms.TypedMultipleChoiceField)  # noqa: S101  # nosec B101
        field.choices = patients

    def clean_patients(self) -> list[int]:
        chosen: list[int] = self.cleaned_data["patients"]
        if not 2 <= len(chosen) <= settings.FAMILY_VISIT_MAX:
            raise forms.ValidationError(
                _("Choose between 2 and %(most)d people.") % {"most": settings.FAMILY_VISIT_MAX}
            )
        return chosen


def _id_list(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise forms.ValidationError(_("Choose the times again.")) from None
    if any(i <= 0 for i in ids):
        raise forms.ValidationError(_("Choose the times again."))
    return ids


class FamilyBookForm(forms.Form):
    """The chosen group: slot ids and patient ids, in the same order; a reason each."""

    slots = forms.CharField(max_length=200, widget=forms.HiddenInput)
    patients = forms.CharField(max_length=200, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        slots, patients = _id_list(data["slots"]), _id_list(data["patients"])
        if len(slots) != len(patients) or not 2 <= len(slots) <= settings.FAMILY_VISIT_MAX:
            raise forms.ValidationError(_("Choose the times again."))
        data["pairs"] = list(zip(patients, slots, strict=True))
        return data

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for index in range(settings.FAMILY_VISIT_MAX):
            self.fields[f"reason_{index}"] = forms.CharField(
                label=_("Reason for the visit (optional)"),
                max_length=500,
                required=False,
                widget=forms.Textarea(attrs={"rows": 2}),
            )


class SignInForm(forms.Form):
    email = forms.EmailField(label=_("Email"), max_length=254)
    password = forms.CharField(
        label=_("Password"), max_length=256, strip=False, widget=forms.PasswordInput
    )
    otp = forms.CharField(
        label=_("Code from your authenticator app (staff)"), max_length=20, required=False
    )


class SignUpForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    date_of_birth = forms.DateField(
        label=_("Date of birth"), widget=forms.DateInput(attrs={"type": "date"})
    )
    email = forms.EmailField(label=_("Email"), max_length=254)
    password = forms.CharField(
        label=_("Password"),
        help_text=_("At least 10 characters. A short sentence is easy to remember."),
        max_length=256,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    accept_terms = forms.BooleanField(label=_("I have read and accept the terms of use."))
    terms_version = forms.CharField(widget=forms.HiddenInput, initial=TERMS_VERSION)


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Confirmation code"),
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


class ForPatientForm(forms.Form):
    """A form naming one of the account's patients; the view passes their (id, name)."""

    patient_id = forms.TypedChoiceField(label=_("Who is the appointment for?"), coerce=int)

    def __init__(self, *args: Any, patients: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_patients(self, patients)


class HoldForm(ForPatientForm):
    pass


class BookForm(ForPatientForm):
    # Hidden on a slot's page; radio buttons when offering other times after a lost race.
    slot_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("Reason for the visit (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    field_order = ("slot_id", "patient_id", "reason")


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Why are you cancelling? (optional)"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class MoveForm(forms.Form):
    new_slot_id = forms.IntegerField(min_value=1)
