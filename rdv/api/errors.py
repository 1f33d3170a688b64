"""The one place where errors become HTTP answers.

Every answer has the same shape, `{"error": {"code", "message", "fields"}}`, and the
message is in the request's language (French by default, English per Accept-Language).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from rdv.core.errors import DomainError
from rdv.core.middleware import is_database_unavailable, unavailable_response

logger = logging.getLogger(__name__)


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


# Pydantic error types → a message in the request's language. `limit` comes from the
# error's context (the bound that was crossed).
_MESSAGES: dict[str, tuple[Promise, str | None]] = {
    "missing": (gettext_lazy("This field is required."), None),
    "int_parsing": (gettext_lazy("Enter a whole number."), None),
    "int_type": (gettext_lazy("Enter a whole number."), None),
    "int_from_float": (gettext_lazy("Enter a whole number."), None),
    "float_parsing": (gettext_lazy("Enter a number."), None),
    "float_type": (gettext_lazy("Enter a number."), None),
    "finite_number": (gettext_lazy("Enter a number."), None),
    "bool_parsing": (gettext_lazy("Enter true or false."), None),
    "bool_type": (gettext_lazy("Enter true or false."), None),
    "greater_than_equal": (gettext_lazy("Enter a value of at least %(limit)s."), "ge"),
    "greater_than": (gettext_lazy("Enter a value greater than %(limit)s."), "gt"),
    "less_than_equal": (gettext_lazy("Enter a value of at most %(limit)s."), "le"),
    "less_than": (gettext_lazy("Enter a value less than %(limit)s."), "lt"),
    "string_too_long": (gettext_lazy("Too long: at most %(limit)s characters."), "max_length"),
    "string_too_short": (gettext_lazy("Too short: at least %(limit)s characters."), "min_length"),
    "string_pattern_mismatch": (gettext_lazy("This value has the wrong format."), None),
    "nul_character": (gettext_lazy("This text contains a character that is not allowed."), None),
    "string_type": (gettext_lazy("Enter text."), None),
    "local_time": (gettext_lazy("Enter a local time as HH:MM (no offset, no seconds)."), None),
    "json_invalid": (gettext_lazy("The request body must be a JSON object."), None),
    "model_attributes_type": (gettext_lazy("The request body must be a JSON object."), None),
    "dict_type": (gettext_lazy("The request body must be a JSON object."), None),
}


def _field_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind.startswith("date"):
        return _("Enter a valid date (YYYY-MM-DD).")
    message, limit_key = _MESSAGES.get(kind, (gettext_lazy("This value is not valid."), None))
    if limit_key is None:
        return str(message)
    limit = (error.get("ctx") or {}).get(limit_key)
    if isinstance(limit, float):
        limit = f"{limit:g}"
    return str(message) % {"limit": limit}


def _field_name(error: dict[str, Any]) -> str:
    # loc is like ("query", "limit") or ("body", "payload", "slot_id").
    parts = [str(p) for p in error.get("loc", ()) if p not in ("query", "body", "path", "payload")]
    return ".".join(parts) or "body"


def install(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
        fields = {exc.field: str(exc.message)} if exc.field else None
        response = api.create_response(
            request, error_body(exc.code, str(exc.message), fields), status=exc.status
        )
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            response["Retry-After"] = str(int(retry_after))
        return response

    @api.exception_handler(NinjaValidationError)
    def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        fields: dict[str, str] = {}
        for error in exc.errors:
            fields.setdefault(_field_name(error), _field_message(error))
        body = error_body("invalid", _("Some of the information provided is not valid."), fields)
        return api.create_response(request, body, status=422)

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        body = error_body("not_authenticated", _("Sign-in required, or your session has expired."))
        response = api.create_response(request, body, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        # Ninja's own messages (e.g. "Cannot parse request body") are English only.
        message = (
            _("The request body must be a JSON object.")
            if exc.status_code == 400
            else _("The request could not be processed.")
        )
        return api.create_response(
            request, error_body("bad_request", message), status=exc.status_code
        )

    @api.exception_handler(DataError)
    def data_error(request: HttpRequest, exc: DataError) -> HttpResponse:
        # A value the database cannot store: the input's fault, never a server error.
        # The database's first words only: the rest may quote the value a person sent.
        logger.warning(
            "database refused a value: %s", str(exc).partition("\n")[0].partition(":")[0]
        )
        body = error_body("invalid", _("Some of the information provided is not valid."))
        return api.create_response(request, body, status=422)

    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        # Ninja would answer these itself (a traceback under DEBUG): the same 503 as the
        # middleware instead. Anything else (a read-only refusal, a real bug) goes on to
        # Django's middleware.
        if not is_database_unavailable(exc):
            raise exc
        return unavailable_response(request, exc)
