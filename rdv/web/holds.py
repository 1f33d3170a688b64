"""A visitor's hold survives signing in: the secret lives in the session, the hold moves
to the account at the moment of login, whichever way they sign in."""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest

from rdv.accounts.models import User
from rdv.scheduling import services

SESSION_KEY = "visitor_hold"


def visitor_token(request: HttpRequest) -> str:
    """This visitor's hold secret, created on first use. Django keeps session data across
    login (only the session key changes), so the receiver below can still read it."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


def claim_on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    """Receiver of `user_logged_in`: hand the visitor's held slot to the account."""
    if request is None or not hasattr(request, "session"):
        return
    token = request.session.pop(SESSION_KEY, None)
    if isinstance(token, str):
        services.claim_visitor_hold(user=user, visitor_token=token)
