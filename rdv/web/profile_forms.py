"""What the profile and family-member pages accept. Forms only parse; the services decide
(rdv.patients.services, rdv.accounts.services) and their field errors land on the field
of the same name here."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.accounts.models import User
from rdv.clinics.models import Practitioner
from rdv.patients.models import Patient
from rdv.patients.services import phone_for_display

DoctorChoices = list[tuple[Any, Any]]


def family_doctor_choices(doctors: Iterable[Practitioner]) -> DoctorChoices:
    """ "None", then the practitioners grouped by municipality, each with their clinic."""
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for doctor in doctors:
        clinic = doctor.clinic
        groups[clinic.municipality_name].append((doctor.pk, f"{doctor.display_name} — {clinic}"))
    return [("", _("None")), *groups.items()]


def _date_input(autocomplete: str) -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date", "autocomplete": autocomplete}, format="%Y-%m-%d")


class PersonForm(forms.Form):
    """Names, date of birth, health card and family doctor: what every patient has."""

    first_name = forms.CharField(label=_("First name"), max_length=100)
    last_name = forms.CharField(label=_("Last name"), max_length=100)
    last_name_at_birth = forms.CharField(
        label=_("Surname at birth"),
        help_text=_("If it differs from the last name: the health insurance number uses it."),
        max_length=100,
        required=False,
    )
    date_of_birth = forms.DateField(label=_("Date of birth"), widget=_date_input("off"))
    ramq_number = forms.CharField(
        label=_("Health insurance number (RAMQ)"),
        help_text=_("4 letters and 8 digits, as on the card, e.g. TREM 8804 1211."),
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    card_sequence_number = forms.CharField(
        label=_("Card sequence number"),
        help_text=_("The 2 digits printed after the number on the card."),
        max_length=4,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    family_doctor = forms.TypedChoiceField(
        label=_("Family doctor"),
        help_text=_(
            "Your family doctor's clinic records your registration; you can remove it here."
        ),
        coerce=int,
        empty_value=None,
        required=False,
        choices=[],
    )

    def __init__(self, *args: Any, doctors: DoctorChoices, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        doctor_field = self.fields["family_doctor"]
        assert isinstance(doctor_field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
        doctor_field.choices = doctors


class ProfileForm(PersonForm):
    """The account holder's own file."""

    phone = forms.CharField(
        label=_("Phone"),
        help_text=_("For the clinic, and for text messages if you want them."),
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
    )

    field_order = (
        "first_name",
        "last_name",
        "last_name_at_birth",
        "date_of_birth",
        "phone",
        "ramq_number",
        "card_sequence_number",
        "family_doctor",
    )

    def __init__(self, *args: Any, doctors: DoctorChoices, **kwargs: Any) -> None:
        super().__init__(*args, doctors=doctors, **kwargs)
        self.fields["first_name"].widget.attrs["autocomplete"] = "given-name"
        self.fields["last_name"].widget.attrs["autocomplete"] = "family-name"
        self.fields["date_of_birth"].widget.attrs["autocomplete"] = "bday"

    @staticmethod
    def initial_for(patient: Patient) -> dict[str, Any]:
        return {
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "last_name_at_birth": patient.last_name_at_birth,
            "date_of_birth": patient.date_of_birth,
            "phone": phone_for_display(patient.phone) if patient.phone else "",
            # As printed on the card: "TREM 8804 1211".
            "ramq_number": " ".join(re.findall(".{1,4}", patient.ramq_number)),
            "card_sequence_number": patient.card_sequence_number,
            "family_doctor": patient.family_doctor_id,
        }


class DependantForm(PersonForm):
    """A child or other family member the account books for."""

    relationship = forms.ChoiceField(
        label=_("Relationship"),
        choices=[
            (Patient.Relationship.CHILD.value, Patient.Relationship.CHILD.label),
            (Patient.Relationship.OTHER.value, Patient.Relationship.OTHER.label),
        ],
    )

    field_order = ("relationship", *ProfileForm.field_order)

    def __init__(self, *args: Any, doctors: DoctorChoices, **kwargs: Any) -> None:
        super().__init__(*args, doctors=doctors, **kwargs)
        for name in ("first_name", "last_name", "last_name_at_birth"):
            self.fields[name].widget.attrs["autocomplete"] = "off"

    @staticmethod
    def initial_for(patient: Patient) -> dict[str, Any]:
        initial = ProfileForm.initial_for(patient)
        del initial["phone"]
        return {**initial, "relationship": patient.relationship}


class PreferencesForm(forms.Form):
    preferred_language = forms.ChoiceField(
        label=_("Language of the pages and messages"), choices=User.Language.choices
    )
    notify_by_email = forms.BooleanField(label=_("By email"), required=False)
    notify_by_sms = forms.BooleanField(label=_("By text message"), required=False)
    reminders = forms.BooleanField(
        label=_("Send me reminders before my appointments"), required=False
    )

    def __init__(self, *args: Any, has_phone: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not has_phone:
            sms = self.fields["notify_by_sms"]
            sms.disabled = True
            sms.help_text = _("Add a phone number above to receive text messages.")

    @staticmethod
    def initial_for(user: User) -> dict[str, Any]:
        return {
            "preferred_language": user.preferred_language,
            "notify_by_email": user.notify_by_email,
            "notify_by_sms": user.notify_by_sms,
            "reminders": user.reminders,
        }
