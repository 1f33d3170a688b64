"""A minimal keep-alive HTTP/1.1 client: one per thread, like one browser tab.

The standard library's http.client is used rather than httpx because it costs less CPU
per request, and the load generator shares the machine's cores with the server.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

TIMEOUT_SECONDS = 30.0
# gunicorn closes a kept-alive connection after 2 s of silence; reconnecting before 1 s
# avoids racing it (a POST that meets a closing socket cannot be safely retried).
MAX_IDLE_SECONDS = 1.0


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer (connection refused or reset, timeout)
    body: bytes
    ms: float
    error: str = ""  # exception name when status is 0

    def json(self) -> Any:
        """The decoded body, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def error_code(self) -> str:
        """The API's error code ("slot_unavailable"…) for an error answer, else ""."""
        if self.status == 0:
            return self.error
        data = self.json()
        if self.status < 400 or not isinstance(data, dict):
            return ""
        error = data.get("error")
        return str(error.get("code", "")) if isinstance(error, dict) else ""


class Client:
    """One persistent connection to the server. Not thread-safe: give each thread its own."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self._host = host
        self._port = port
        self._headers = headers or {}  # sent with every request (e.g. a session cookie)
        self._conn = self._connect()
        self._last_used = time.monotonic()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=TIMEOUT_SECONDS)

    def _reconnect(self) -> None:
        self._conn.close()
        self._conn = self._connect()

    def close(self) -> None:
        self._conn.close()

    def get(
        self, path: str, query: dict[str, str | int] | None = None, token: str | None = None
    ) -> Answer:
        """GET; retried once on a fresh connection if the kept-alive one failed."""
        target = f"{path}?{urlencode(query)}" if query else path
        answer = self._send("GET", target, None, token)
        if answer.status == 0:
            answer = self._send("GET", target, None, token)
        return answer

    def post_json(self, path: str, payload: dict[str, Any], token: str | None = None) -> Answer:
        """POST, never retried: a booking that may have gone through must not be sent twice."""
        return self._send("POST", path, json.dumps(payload).encode(), token)

    def _send(self, method: str, target: str, body: bytes | None, token: str | None) -> Answer:
        headers = {"Accept": "application/json", **self._headers}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        if time.monotonic() - self._last_used > MAX_IDLE_SECONDS:
            self._reconnect()
        started = time.perf_counter()
        try:
            self._conn.request(method, target, body=body, headers=headers)
            response = self._conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError) as exc:
            self._reconnect()
            ms = (time.perf_counter() - started) * 1000
            return Answer(status=0, body=b"", ms=ms, error=type(exc).__name__)
        finally:
            self._last_used = time.monotonic()
        ms = (time.perf_counter() - started) * 1000
        if response.will_close:
            self._reconnect()
        return Answer(status=response.status, body=data, ms=ms)
