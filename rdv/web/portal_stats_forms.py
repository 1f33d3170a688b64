"""The statistics page's form: a period and, optionally, one practitioner.

The form only parses; the period's rules (order, length, reach) are
rdv.clinics.stats.check_period's.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from rdv.clinics.models import Practitioner


def _day_field(label: Any) -> forms.DateField:
    return forms.DateField(
        label=label,
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": _("Enter the date as YYYY-MM-DD, for example 2026-11-24.")},
    )


class StatsForm(forms.Form):
    """`?from=YYYY-MM-DD&to=YYYY-MM-DD&practitioner=<id>`, each optional."""

    practitioner = forms.TypedChoiceField(
        label=_("Practitioner"), required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args: Any, practitioners: list[Practitioner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword: these two cannot be class attributes. Declared first,
        # so they come first on the page and in the error summary.
        self.fields = {
            "from": _day_field(_("First day")),
            "to": _day_field(_("Last day")),
            **self.fields,
        }
        field = self.fields["practitioner"]
        assert isinstance(field, forms.TypedChoiceField)  # noqa: S101  # nosec B101
        field.choices = [
            ("", _("All practitioners")),
            *((p.pk, p.display_name) for p in practitioners),
        ]
