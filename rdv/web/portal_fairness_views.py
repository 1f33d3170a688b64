"""Placeholder: the web helper replaces this module with the fairness report pages."""

from django.http import Http404, HttpRequest, HttpResponse


def fairness_page(request: HttpRequest, clinic_id: int) -> HttpResponse:
    raise Http404


fairness_csv = fairness_page
