"""Forms of the clinic portal."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.core import clock
from rdv.scheduling.services import ATTENDANCE_FROM, CLINIC_REASON_MAX

# Portal pages show days within this many days of today: enough for any planning, and
# far from the calendar's ends, where date arithmetic overflows.
PORTAL_DAYS_RANGE = 366


class PortalDateField(forms.DateField):
    """A day within a year of today."""

    widget = forms.DateInput(attrs={"type": "date"})

    def validate(self, value: object) -> None:
        super().validate(value)
        if isinstance(value, date) and abs((value - clock.local_today()).days) > PORTAL_DAYS_RANGE:
            raise forms.ValidationError(_("Choose a date within a year of today."), code="range")


class DayForm(forms.Form):
    """Which day of the agenda, and optionally one practitioner's."""

    date = PortalDateField(label=_("Day"), required=False)
    practitioner = forms.TypedChoiceField(
        label=_("Practitioner"), required=False, coerce=int, empty_value=None
    )

    def __init__(
        self, *args: object, practitioners: list[tuple[int, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["practitioner"].choices = [("", _("All practitioners")), *practitioners]  # type: ignore[attr-defined]


class MyDayForm(forms.Form):
    """Which day of a practitioner's own agenda."""

    date = PortalDateField(label=_("Day"), required=False)


# Where a button of the agenda returns to once the change is recorded.
BACK_TO_MY_DAY = "my_day"


class AttendanceForm(forms.Form):
    status = forms.ChoiceField(choices=[(s.value, s.label) for s in ATTENDANCE_FROM])
    back = forms.ChoiceField(choices=[(BACK_TO_MY_DAY, BACK_TO_MY_DAY)], required=False)


class RegisteredFindForm(forms.Form):
    ramq_number = forms.CharField(
        label=_("Patient's health insurance number"),
        max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class RegisteredAddForm(forms.Form):
    patient = forms.CharField(max_length=300)


class ClinicCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason, told to the patient"),
        max_length=CLINIC_REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
