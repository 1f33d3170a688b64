from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from rdv.accounts.models import User
from rdv.accounts.services import user_for_token
from rdv.core.errors import NotAuthenticated


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        return user_for_token(token)


def optional_user(request: HttpRequest) -> User | None:
    """The bearer token's user on endpoints that also serve anonymous visitors."""
    if not request.headers.get("Authorization"):
        return None
    # Parsed exactly as on the endpoints that require a token.
    user = BearerToken()(request)
    if not isinstance(user, User):
        # A credential that does not work is an error, not an anonymous visit.
        raise NotAuthenticated()
    return user


def request_user(request: HttpRequest) -> User:
    user = getattr(request, "auth", None)
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
