"""Log records: each carries the request id; JSON lines in production.

Addresses are a hazard in logs: a path may hold a one-click token and a query string what
a patient typed. Records therefore name a request by its route (the URL pattern), never
by its path.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from rdv.audit import context

# What every LogRecord has; anything else on a record was passed as `extra`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "request_id",
}


def request_route(request: HttpRequest) -> str:
    """The request's address as logs and metric labels may show it: the URL pattern that
    matched ("/appointments/<int:pk>/"), "static" for static files, else "unmatched"."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return "/" + str(match.route)
    if request.path.startswith(settings.STATIC_URL):
        return "static"
    return "unmatched"


def _hide_request_path(record: logging.LogRecord) -> None:
    """Django's own request records ("Not Found: /r/<token>/") put the path in their
    arguments: replace it by the route."""
    request = getattr(record, "request", None)
    if not isinstance(request, HttpRequest) or not isinstance(record.args, tuple):
        return
    path = request.path
    forms = {path, path.encode("unicode_escape").decode("ascii"), request.get_full_path()}
    route = request_route(request)
    record.args = tuple(route if arg in forms else arg for arg in record.args)


class RequestIdFilter(logging.Filter):
    """Adds the request id (from the record's `extra`, else the current request's, else
    "-") and keeps paths out of Django's request records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = context.current().request_id or "-"
        _hide_request_path(record)
        return True


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    # Plain values only: an object passed along (Django passes the request itself) would
    # be written out through its repr, which shows the full address.
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRIBUTES
        and not key.startswith("_")
        and isinstance(value, str | int | float | bool)
    }


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, request_id,
    the record's plain `extra` fields, and the formatted exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update(_extra_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
