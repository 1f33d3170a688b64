"""The "stop reminders" link of a reminder email (RFC 8058 one-click), without signing in.

GET only shows what will happen and a button: mail scanners and link previews open links,
and must not change anything. A POST turns reminders off, whether it comes from that
button or from the mail provider's own "unsubscribe" (a bare
`List-Unsubscribe=One-Click` body, with no cookie).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from rdv.accounts import services as accounts
from rdv.api.limits import enforce
from rdv.notifications.links import read_unsubscribe_token
from rdv.web.errors import handles_domain_errors


# The mail provider's POST carries no cookie and no CSRF token, so the CSRF check cannot
# apply. Nothing here relies on the session: the signed token names the account, and all
# the request can do is turn that account's reminders off (the page's own form still
# carries a csrf_token, harmlessly).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    response = _unsubscribe(request, token)
    # The token is in the address: keep it out of other sites' logs and of caches.
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


@handles_domain_errors
def _unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    user_id = read_unsubscribe_token(token)
    done = False
    if request.method == "POST":
        # The "search" budget (120/min per IP): one-click POSTs come from mail providers'
        # shared servers, and a refused one would leave the person subscribed.
        enforce(request, "search")
        accounts.stop_reminders(user_id=user_id)
        done = True
    return render(request, "web/unsubscribe.html", {"done": done})
