"""GET /metrics: figures for the operator's Prometheus, in its text format; and the
figures each process counts itself (requests, their latency, bookings, cancellations).

Behind a bearer token (METRICS_TOKEN); without one configured the address does not exist.
Each endpoint has its own registry holding only the collectors it is given and this
module's counters: nothing from prometheus_client's global default registry (process,
platform) is exposed.

Several gunicorn workers each count their own requests. With PROMETHEUS_MULTIPROC_DIR
set (`manage.py serve` sets it for its children; docs/monitoring.md), every process
writes its counts to a file there and a scrape, whichever process answers it, adds them
all up; without it (tests, a single process) the counts live in the process's memory.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from rdv.core.logs import request_route

access_log = logging.getLogger("rdv.access")

# No "_created" series beside each counter: twice the series, and the same in every mode
# (the multiprocess mode has none).
disable_created_metrics()  # type: ignore[no-untyped-call]

# Not registered anywhere: metrics_endpoint adds them (or, across processes, their files).
HTTP_REQUESTS = Counter(
    "rdv_http_requests",
    "HTTP requests answered, by method, route (URL pattern) and status.",
    ["method", "route", "status"],
    registry=None,
)
HTTP_DURATION = Histogram(
    "rdv_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route (URL pattern).",
    ["method", "route"],
    registry=None,
)
APPOINTMENTS_BOOKED = Counter(
    "rdv_appointments_booked",
    "Appointments booked, by channel: online (the patient), clinic (its front desk), finder.",
    ["channel"],
    registry=None,
)
APPOINTMENTS_CANCELLED = Counter(
    "rdv_appointments_cancelled",
    "Appointments cancelled, by whom: patient or clinic.",
    ["by"],
    registry=None,
)
_COUNTED_HERE = (HTTP_REQUESTS, HTTP_DURATION, APPOINTMENTS_BOOKED, APPOINTMENTS_CANCELLED)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Answered every few seconds by machines: counted, but a line each would drown the log.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
# A caller's own id is kept only if it is short and plain: it goes into every log line
# and audit entry of the request.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,40}")


def _multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


if _multiprocess_dir():
    # Each process writes its counts there from its first request on: a missing
    # directory would turn every request into an error.
    os.makedirs(_multiprocess_dir(), exist_ok=True)


def _add_process_counts(registry: CollectorRegistry) -> None:
    if _multiprocess_dir():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return
    for metric in _COUNTED_HERE:
        registry.register(metric)


def _bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


def metrics_endpoint(*collectors: Collector) -> Callable[[HttpRequest], HttpResponse]:
    """A view exposing these collectors and the processes' counters, and nothing else."""
    registry = CollectorRegistry()
    _add_process_counts(registry)
    for collector in collectors:
        registry.register(collector)

    @never_cache
    def metrics(request: HttpRequest) -> HttpResponse:
        if not settings.METRICS_TOKEN:
            raise Http404
        if not _bearer_token_matches(request, settings.METRICS_TOKEN):
            response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    return metrics


def _adopt_request_id(request: HttpRequest) -> str:
    """The request's id: the caller's X-Request-Id if plain, else a new one. Written back
    into the request so rdv.audit.context, further down, takes the same id."""
    given = request.META.get("HTTP_X_REQUEST_ID", "")
    request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    request.META["HTTP_X_REQUEST_ID"] = request_id
    return request_id


def _record(request: HttpRequest, status: int, seconds: float, request_id: str) -> None:
    method = request.method if request.method in _METHODS else "other"
    route = request_route(request)
    HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
    HTTP_DURATION.labels(method=method, route=route).observe(seconds)
    if route in _QUIET_ROUTES and status < 400:
        return
    duration_ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %s %sms",
        method,
        route,
        status,
        duration_ms,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": request_id,
        },
    )


def request_metrics(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Counts and times every request, and writes its access-log line (method, route,
    status, duration, request id: never the path or the query string, which may hold a
    one-click token or what a patient typed)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        request_id = _adopt_request_id(request)
        started = time.perf_counter()
        response = get_response(request)
        _record(request, response.status_code, time.perf_counter() - started, request_id)
        return response

    return middleware
