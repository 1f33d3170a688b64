"""Stripe's calls to us (https://docs.stripe.com/webhooks). Each is signed with our
endpoint's secret (Stripe-Signature); an unsigned, tampered or stale one is refused (400)
before anything in it is believed. A replayed event is answered 200 and changes nothing."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rdv.billing import services

# Stripe's events are small (a few kB); anything far bigger is not one of them.
MAX_BODY_BYTES = 256 * 1024


@csrf_exempt  # Stripe cannot send our CSRF token; the signature stands in for it
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    length = request.headers.get("Content-Length", "0")
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        return JsonResponse({"error": "webhook_too_large"}, status=400)
    try:
        outcome = services.handle_stripe_webhook(
            payload=request.body, signature_header=request.headers.get("Stripe-Signature", "")
        )
    except services.WebhookRejected as exc:
        return JsonResponse({"error": exc.code}, status=400)
    return JsonResponse({"outcome": outcome})
