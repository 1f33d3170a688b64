"""Django's database sessions, still saved in read-only mode (rdv.continuity.readonly).

A session row is not the platform's data: people must stay signed in (and staff's idle
timer must keep sliding) while the platform serves reads only.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from rdv.continuity import readonly


class SessionStore(DatabaseSessionStore):
    def save(self, must_create: bool = False) -> None:
        with readonly.writable():
            super().save(must_create=must_create)

    def delete(self, session_key: str | None = None) -> None:
        with readonly.writable():
            super().delete(session_key)
