"""Read-only mode: the platform answers reads and refuses every write (placeholder)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

_cache: tuple[float, bool] | None = None


def is_active() -> bool:
    """On when READ_ONLY is set or the admin switch is on (read at most every
    READ_ONLY_CHECK_SECONDS per process)."""
    global _cache  # noqa: PLW0603
    if settings.READ_ONLY:
        return True
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < settings.READ_ONLY_CHECK_SECONDS:
        return _cache[1]
    from rdv.continuity.models import ReadOnlySwitch  # noqa: PLC0415

    try:
        enabled = ReadOnlySwitch.objects.filter(pk=1, enabled=True).exists()
    except DatabaseError:
        # Unreadable switch (database down): keep the last reading.
        return _cache[1] if _cache is not None else False
    _cache = (now, enabled)
    return enabled


def forget() -> None:
    """Read the switch again at the next check (after changing it, and in tests)."""
    global _cache  # noqa: PLW0603
    _cache = None


def middleware(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    return get_response


def context(request: HttpRequest) -> dict[str, Any]:
    return {}
