"""What the finder's pages accept. Forms only parse: rdv.finder.services decides (places,
date ranges, deadlines, who the patient may be), and its refusals land on the field they
name through `add_service_error`."""

from __future__ import annotations

from datetime import time
from typing import Any

from django import forms
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext_lazy as _

from rdv.finder.models import AlertScope, Mode
from rdv.scheduling.models import AppointmentType
from rdv.web.forms import LANGUAGE_CHOICES, RADIUS_CHOICES, offer_patients
from rdv.web.portal_stats_forms import _day_field

# How many weekly-window rows the page shows; empty rows are ignored.
WINDOW_ROWS = 3
WEEKDAY_CHOICES = [("", _("Choose a day")), *((str(d), name) for d, name in WEEKDAYS.items())]


class PeriodForm(forms.Form):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD` (the fairness report; the statistics page's rules)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: not a class attribute.
        self.fields = {"from": _day_field(_("First day")), "to": _day_field(_("Last day"))}


def _date_field(label: Any, help_text: Any = "") -> forms.DateField:
    return forms.DateField(
        label=label,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter the date as YYYY-MM-DD, for example 2026-11-24.")},
    )


def _time_field(label: Any) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        error_messages={"invalid": _("Enter the time as HH:MM, for example 13:30.")},
    )


class RequestForm(forms.Form):
    """A new finder request. Weekly windows come as WINDOW_ROWS rows of (day, from, to);
    `windows()` gives the filled ones as (weekday, start, end)."""

    patient_id = forms.TypedChoiceField(label=_("Who is the appointment for?"), coerce=int)
    mode = forms.ChoiceField(
        label=_("When a time is found"),
        choices=Mode.choices,
        initial=Mode.OFFER,
        widget=forms.RadioSelect,
    )
    appointment_type = forms.ChoiceField(
        label=_("Type of appointment"), choices=[("", _("Choose a type")), *AppointmentType.choices]
    )
    near = forms.CharField(
        label=_("Municipality or postal code"),
        max_length=100,
        widget=forms.TextInput(attrs={"list": "municipalities", "autocomplete": "off"}),
    )
    radius_km = forms.TypedChoiceField(
        label=_("Distance"), choices=RADIUS_CHOICES, coerce=int, initial=25
    )
    earliest_date = _date_field(_("Earliest date"))
    latest_date = _date_field(_("Latest date"))
    language = forms.ChoiceField(
        label=_("Practitioner's language"), choices=LANGUAGE_CHOICES, required=False
    )
    deadline = _date_field(
        _("Search until"),
        _("If nothing is booked by the end of this day, the search stops and you are refunded."),
    )
    notify_by_email = forms.BooleanField(label=_("By email"), required=False, initial=True)
    notify_by_sms = forms.BooleanField(label=_("By text message"), required=False)

    # The services' names for fields, mapped to this form's.
    SERVICE_FIELDS = {
        "place": "near",
        "patient": "patient_id",
        "type": "appointment_type",
        "time_windows": "window_0_weekday",
        "windows": "window_0_weekday",
        "email": "notify_by_email",
        "sms": "notify_by_sms",
        "channels": "notify_by_email",
    }

    def __init__(self, *args: Any, patients: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        offer_patients(self, patients)
        for row in range(WINDOW_ROWS):
            self.fields[f"window_{row}_weekday"] = forms.ChoiceField(
                label=_("Day"), choices=WEEKDAY_CHOICES, required=False
            )
            self.fields[f"window_{row}_start"] = _time_field(_("From"))
            self.fields[f"window_{row}_end"] = _time_field(_("To"))

    def window_rows(self) -> list[tuple[forms.BoundField, forms.BoundField, forms.BoundField]]:
        return [
            (self[f"window_{r}_weekday"], self[f"window_{r}_start"], self[f"window_{r}_end"])
            for r in range(WINDOW_ROWS)
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        windows: list[tuple[int, time, time]] = []
        for row in range(WINDOW_ROWS):
            day = data.get(f"window_{row}_weekday")
            start = data.get(f"window_{row}_start")
            end = data.get(f"window_{row}_end")
            if f"window_{row}_start" in self.errors or f"window_{row}_end" in self.errors:
                continue
            if not day and start is None and end is None:
                continue  # an empty row
            if not day:
                self.add_error(f"window_{row}_weekday", _("Choose the day of this time window."))
            elif start is None or end is None:
                missing = f"window_{row}_start" if start is None else f"window_{row}_end"
                self.add_error(missing, _("Give both times of this window."))
            elif start >= end:
                self.add_error(f"window_{row}_end", _("The end must be after the start."))
            else:
                windows.append((int(day), start, end))
        data["windows"] = windows
        if not data.get("notify_by_email") and not data.get("notify_by_sms"):
            self.add_error("notify_by_email", _("Choose at least one way to reach you."))
        return data

    def add_service_error(self, field: str | None, message: str) -> None:
        name = self.SERVICE_FIELDS.get(field or "", field)
        self.add_error(name if name in self.fields else None, message)


class AlertForm(forms.Form):
    """A free alert: a clinic, a practitioner, or an area (place + distance)."""

    scope = forms.ChoiceField(
        label=_("Alert me about"), choices=AlertScope.choices, widget=forms.RadioSelect
    )
    clinic_id = forms.TypedChoiceField(
        label=_("Clinic"), coerce=int, required=False, empty_value=None
    )
    practitioner_id = forms.TypedChoiceField(
        label=_("Practitioner"), coerce=int, required=False, empty_value=None
    )
    near = forms.CharField(
        label=_("Municipality or postal code"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"list": "municipalities", "autocomplete": "off"}),
    )
    radius_km = forms.TypedChoiceField(
        label=_("Distance"), choices=RADIUS_CHOICES, coerce=int, initial=10, required=False
    )
    appointment_type = forms.ChoiceField(
        label=_("Type of appointment"),
        choices=[("", _("Any type")), *AppointmentType.choices],
        required=False,
    )

    SERVICE_FIELDS = {
        "place": "near",
        "clinic": "clinic_id",
        "practitioner": "practitioner_id",
        "type": "appointment_type",
    }

    def __init__(
        self,
        *args: Any,
        clinics: list[tuple[int, str]],
        practitioners: list[tuple[int, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        for name, choices, empty in (
            ("clinic_id", clinics, _("Choose a clinic")),
            ("practitioner_id", practitioners, _("Choose a practitioner")),
        ):
            field = self.fields[name]
            assert isinstance(field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
            field.choices = [("", empty), *choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scope = data.get("scope")
        needed = {
            "clinic": ("clinic_id", _("Choose the clinic.")),
            "practitioner": ("practitioner_id", _("Choose the practitioner.")),
            "area": ("near", _("Enter a municipality or postal code.")),
        }.get(str(scope or ""))
        if needed is not None and not data.get(needed[0]) and needed[0] not in self.errors:
            self.add_error(needed[0], needed[1])
        return data

    def add_service_error(self, field: str | None, message: str) -> None:
        name = self.SERVICE_FIELDS.get(field or "", field)
        self.add_error(name if name in self.fields else None, message)


def window_label(window: list[Any] | tuple[Any, ...]) -> str:
    """A stored window [weekday, "HH:MM", "HH:MM"] as "Monday, 08:00–12:00"."""
    try:
        day, start, end = window
        return f"{WEEKDAYS[int(day)]}, {start}–{end}"
    except (TypeError, ValueError, KeyError):
        return str(window)
