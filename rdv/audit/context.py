"""Who is asking, from where: set once per request, read when an audit entry is written.

A context variable keeps services free of HTTP arguments and is safe with threaded
servers (each request's thread sees its own value).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse


@dataclass(frozen=True)
class RequestContext:
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


_NO_REQUEST = RequestContext()  # work done by the worker or a command
_current: ContextVar[RequestContext | None] = ContextVar("audit_request", default=None)


def current() -> RequestContext:
    return _current.get() or _NO_REQUEST


def _client_ip(request: HttpRequest) -> str | None:
    # Behind the production proxy, REMOTE_ADDR is set from X-Forwarded-For by the proxy
    # configuration (docs/operations.md); the header itself is never trusted here.
    return request.META.get("REMOTE_ADDR") or None


def middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    def handle(request: HttpRequest) -> HttpResponse:
        context = RequestContext(
            ip=_client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:300],
            request_id=request.headers.get("X-Request-Id", "")[:40] or uuid.uuid4().hex,
        )
        token = _current.set(context)
        try:
            response = get_response(request)
        finally:
            _current.reset(token)
        response["X-Request-Id"] = context.request_id
        return response

    return handle
