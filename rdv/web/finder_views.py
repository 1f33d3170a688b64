"""Placeholder: the web helper replaces this module with the finder's pages."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse


def _missing(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    raise Http404


requests = new_request = request_detail = pay = cancel = receipt = _missing
accept = decline = alerts = remove_alert = _missing
