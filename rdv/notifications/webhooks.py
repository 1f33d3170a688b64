"""Twilio's calls to us: delivery status of a message we sent, and texts people send back
(STOP). Each request is signed by Twilio with our auth token (X-Twilio-Signature); an
unsigned or tampered one is refused before anything is read from it.
https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rdv.notifications import services


def twilio_signature(url: str, params: QueryDict | dict[str, list[str]]) -> str:
    """base64(HMAC-SHA1(auth token, url + each parameter's name and values, by name))."""
    items = params.lists() if isinstance(params, QueryDict) else params.items()
    payload = url + "".join(name + "".join(values) for name, values in sorted(items))
    digest = hmac.new(settings.TWILIO_AUTH_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _signed(request: HttpRequest) -> bool:
    """Checked against our public address (SITE_URL), never the Host header a client sets."""
    if not settings.TWILIO_AUTH_TOKEN:
        return False
    expected = twilio_signature(settings.SITE_URL + request.get_full_path(), request.POST)
    given = request.headers.get("X-Twilio-Signature", "")
    return hmac.compare_digest(expected, given)


@csrf_exempt  # Twilio cannot send our CSRF token; the signature stands in for it
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    if not _signed(request):
        return HttpResponse(status=403)
    found = services.record_provider_status(
        provider_id=request.POST.get("MessageSid", "")[:120],
        status=request.POST.get("MessageStatus", ""),
        error_code=request.POST.get("ErrorCode", "")[:10],
    )
    return HttpResponse(status=204 if found else 404)


@csrf_exempt  # as above
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    if not _signed(request):
        return HttpResponse(status=403)
    services.stop_requested(
        number=request.POST.get("From", "")[:30], body=request.POST.get("Body", "")[:200]
    )
    # An empty TwiML answer: Twilio itself confirms the opt-out to the sender.
    return HttpResponse("<Response/>", content_type="text/xml")
