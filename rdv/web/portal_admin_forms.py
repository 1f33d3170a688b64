"""Forms of the clinic administrator's pages: practitioners and their weekly times.

Forms only parse; the rules (names, languages, periods, overlaps) are the services'.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import Practitioner
from rdv.clinics.services import NAME_MAX_LENGTH, PRACTITIONER_LANGUAGES
from rdv.core import clock
from rdv.core.errors import DomainError
from rdv.scheduling.models import AppointmentType, Visibility
from rdv.web.portal_forms import PortalDateField

LANGUAGE_CHOICES = list(PRACTITIONER_LANGUAGES.items())


def put_error(form: forms.Form, error: DomainError) -> None:
    """A service's refusal, on the field it names (or on the whole form)."""
    form.add_error(error.field if error.field in form.fields else None, str(error.message))


def _languages_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=_("Languages of consultation"),
        choices=LANGUAGE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
    )


def _accepting_field() -> forms.BooleanField:
    return forms.BooleanField(label=_("Accepting new patients"), required=False)


class PractitionerForm(forms.Form):
    first_name = forms.CharField(label=_("First name"), max_length=NAME_MAX_LENGTH)
    last_name = forms.CharField(label=_("Last name"), max_length=NAME_MAX_LENGTH)
    profession = forms.ChoiceField(
        label=_("Profession"), choices=[("", "—"), *Practitioner.Profession.choices]
    )
    languages = _languages_field()
    accepting_new_patients = _accepting_field()


class PractitionerStatusForm(forms.Form):
    """Whether they work here now, take new patients, and in which languages."""

    is_active = forms.BooleanField(
        label=_("Active: their weekly times are offered for booking"), required=False
    )
    accepting_new_patients = _accepting_field()
    languages = _languages_field()

    @classmethod
    def initial_for(cls, practitioner: Practitioner, languages: list[str]) -> dict[str, Any]:
        return {
            "is_active": practitioner.is_active,
            "accepting_new_patients": practitioner.accepting_new_patients,
            "languages": languages,
        }


class WeeklyRuleForm(forms.Form):
    weekday = forms.TypedChoiceField(
        label=_("Day of the week"), choices=list(WEEKDAYS.items()), coerce=int
    )
    start_time = forms.TimeField(
        label=_("Start"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    end_time = forms.TimeField(
        label=_("End"), widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    slot_minutes = forms.IntegerField(
        label=_("Length of an appointment (minutes)"),
        initial=15,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    appointment_type = forms.ChoiceField(
        label=_("Type of appointment"), choices=AppointmentType.choices
    )
    visibility = forms.ChoiceField(
        label=_("Who may book"), choices=Visibility.choices, initial=Visibility.PUBLIC
    )
    release_hours = forms.IntegerField(
        label=_("Open to the public N hours before if still free"),
        required=False,
        help_text=_(
            "Only for times reserved for registered patients: from 1 to 336 hours. "
            "Leave empty to keep them reserved."
        ),
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    valid_from = PortalDateField(
        label=_("First day"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    valid_until = PortalDateField(
        label=_("Last day"),
        required=False,
        help_text=_("Leave empty for a time with no end."),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["valid_from"].initial = clock.local_today()


class RuleReleaseForm(forms.Form):
    """When a reserved weekly time opens to the public (empty: it stays reserved)."""

    release_hours = forms.IntegerField(
        label=_("Hours before"),
        required=False,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
