"""GET /metrics: figures for the operator's Prometheus, in its text format.

Behind a bearer token (METRICS_TOKEN); without one configured the address does not exist.
Each endpoint has its own registry holding only the collectors it is given: nothing from
prometheus_client's global default registry (process, platform) is exposed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.registry import Collector


def _bearer_token_matches(request: HttpRequest, expected: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


def metrics_endpoint(*collectors: Collector) -> Callable[[HttpRequest], HttpResponse]:
    """A view exposing these collectors, and only them."""
    registry = CollectorRegistry()
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


def request_metrics(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Counts and times every request (placeholder: passes through)."""
    return get_response
