"""Model fields whose values are stored encrypted (rdv.core.crypto), never in clear.

The column holds a token (TEXT); the model attribute holds the plain Python value. Values
are encrypted in get_prep_value, so saves, QuerySet.update() and bulk_update() all write
tokens, and decrypted in from_db_value. An empty string is stored as an empty string:
whether a field is filled in is not secret, and it lets a blank column be added without
keys. A ciphertext cannot be compared, so every lookup except `isnull` raises: equality
goes through a blind index column (see rdv.patients.ramq).

Each token is bound to its column, "<app_label>.<model_name>.<field_name>". Renaming a
field or model changes that name: keep the old one with `context="…"`, or re-encrypt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django import forms
from django.core import exceptions, validators
from django.core.exceptions import FieldError
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Lookup, Transform
from django.db.models.expressions import Combinable, Expression
from django.utils.dateparse import parse_date
from django.utils.translation import gettext_lazy as _

from rdv.core.crypto import FieldCryptoError, key_ring


def in_choices(field: str, choices: type[models.TextChoices]) -> models.Q:
    """A check-constraint condition: the column holds one of its choices' values."""
    return models.Q(**{f"{field}__in": choices.values})


# Set and get types, as in django-stubs' Field[_ST, _GT]; its mypy plugin fills them in from
# the `_pyi_private_*` annotations of each field class.
_ST_contra = TypeVar("_ST_contra", contravariant=True)
_GT_co = TypeVar("_GT_co", covariant=True)

if TYPE_CHECKING:
    _GenericField = models.Field
else:

    class _GenericField(models.Field, Generic[_ST_contra, _GT_co]):
        """Field is generic only in the stubs; Generic accepts the same subscript at run time."""


class EncryptedLookupError(FieldError):
    """A query tried to compare an encrypted column, which cannot work on ciphertext."""


class EncryptedField(_GenericField[_ST_contra, _GT_co]):
    """Shared machinery: a TEXT column of tokens, bound to "<app>.<model>.<field>"."""

    # Where a token was made is part of its authentication, not of the column's schema.
    non_db_attrs = (*models.Field.non_db_attrs, "context")

    def __init__(self, *args: Any, context: str | None = None, **kwargs: Any) -> None:
        self.context = context
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Sequence[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if self.context is not None:
            kwargs["context"] = self.context
        return name, path, args, kwargs

    @property
    def encryption_context(self) -> str:
        """The associated data every token of this column is bound to."""
        if self.context is not None:
            return self.context
        if not hasattr(self, "model"):
            raise FieldCryptoError("an encrypted field must belong to a model")
        return f"{self.model._meta.label_lower}.{self.name}"

    def get_internal_type(self) -> str:
        return "TextField"

    def serialise(self, value: Any) -> str:
        """The text that is encrypted for a non-empty Python value."""
        raise NotImplementedError

    def deserialise(self, text: str) -> Any:
        """The Python value of a decrypted text."""
        raise NotImplementedError

    def get_prep_value(self, value: Any) -> Any:
        value = self.to_python(super().get_prep_value(value))
        if value is None or value == "":
            return value
        return key_ring().encrypt(self.serialise(value), context=self.encryption_context)

    def get_db_prep_value(
        self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False
    ) -> Any:
        # A token is already what the column stores: no backend adaptation on top.
        return value if prepared else self.get_prep_value(value)

    def from_db_value(
        self, value: str | None, expression: Expression, connection: BaseDatabaseWrapper
    ) -> Any:
        if value is None or value == "":
            return self.to_python(value)
        return self.deserialise(key_ring().decrypt(value, context=self.encryption_context))

    def get_lookup(self, lookup_name: str) -> type[Lookup[Any]] | None:
        # None, not an exception: Django then asks get_transform, which raises the clear
        # error below (and django-stubs' mypy plugin, which calls this, does not crash).
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, lookup_name: str) -> type[Transform] | None:
        raise self._no_lookup(lookup_name)

    def _no_lookup(self, lookup_name: str) -> EncryptedLookupError:
        return EncryptedLookupError(
            f"{self.encryption_context} is encrypted: '{lookup_name}' cannot be applied to "
            "ciphertext. Use isnull, or look the value up through its blind index."
        )


class EncryptedTextField(EncryptedField[_ST_contra, _GT_co]):
    """Text stored encrypted. `max_length` is checked by model validation only."""

    _pyi_private_set_type: str | Combinable
    _pyi_private_get_type: str
    _pyi_lookup_exact_type: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.max_length is not None:
            self.validators.append(validators.MaxLengthValidator(self.max_length))

    def to_python(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return str(value)

    def serialise(self, value: Any) -> str:
        return str(value)

    def deserialise(self, text: str) -> str:
        return text

    def formfield(self, **kwargs: Any) -> Any:
        defaults: dict[str, Any] = {"max_length": self.max_length, "widget": forms.Textarea}
        return super().formfield(**{**defaults, **kwargs})


class EncryptedDateField(EncryptedField[_ST_contra, _GT_co]):
    """A calendar date stored encrypted (ISO 8601 inside the token)."""

    _pyi_private_set_type: date | str | Combinable
    _pyi_private_get_type: date
    _pyi_lookup_exact_type: date | str

    empty_strings_allowed = False
    default_error_messages = {"invalid": _("Enter a valid date (YYYY-MM-DD).")}

    def to_python(self, value: Any) -> Any:
        if value is None or value == "":
            return None
        # A datetime is a date too in Python; silently dropping its time would hide a bug.
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        try:
            parsed = parse_date(str(value)) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        if parsed is None:
            raise exceptions.ValidationError(self.error_messages["invalid"], code="invalid")
        return parsed

    def serialise(self, value: Any) -> str:
        return str(value.isoformat())

    def deserialise(self, text: str) -> date:
        return date.fromisoformat(text)

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": forms.DateField, **kwargs})
