"""Billing's test doubles: the finder's two hooks (recorded, not run) and FakeStripe, a
local HTTP server answering with the shapes Stripe documents.

https://docs.stripe.com/api/payment_intents/object
https://docs.stripe.com/api/refunds/object
https://docs.stripe.com/api/errors
"""

from __future__ import annotations

import importlib
import json
import sys
import threading
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from rdv.accounts.models import User
from rdv.billing import services
from rdv.billing.models import Payment
from rdv.core.money import finder_price

SECRET_KEY = "sk_test_" + "4" * 24
WEBHOOK_SECRET = "whsec_test_" + "7" * 24


@dataclass
class FinderHooks:
    """What billing told the finder, in order: ("succeeded" | "failed", payment id)."""

    calls: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture(autouse=True)
def finder_hooks(monkeypatch: pytest.MonkeyPatch) -> FinderHooks:
    """Billing's tests are about billing: the finder's hooks are recorded, not run (the
    finder's own tests run them for real)."""
    hooks = FinderHooks()

    def succeeded(payment: Payment) -> None:
        hooks.calls.append(("succeeded", payment.pk))

    def failed(payment: Payment) -> None:
        hooks.calls.append(("failed", payment.pk))

    try:
        module = importlib.import_module("rdv.finder.services")
    except ImportError:
        module = types.ModuleType("rdv.finder.services")
        monkeypatch.setitem(sys.modules, "rdv.finder.services", module)
    monkeypatch.setattr(module, "on_payment_succeeded", succeeded, raising=False)
    monkeypatch.setattr(module, "on_payment_failed", failed, raising=False)
    return hooks


@dataclass
class FakeStripe:
    """Answers POST /v1/payment_intents, POST /v1/refunds and GET /v1/refunds/<id> as
    Stripe does, including its idempotency: a key seen before gets the first answer
    again. `failures` are answered first, one per request, as Stripe's error bodies."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    failures: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_status: str = "succeeded"
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)

    def fail_next(self, status: int, kind: str, message: str, code: str = "") -> None:
        error: dict[str, Any] = {"type": kind, "message": message}
        if code:
            error["code"] = code
        self.failures.append((status, {"error": error}))

    def posts(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.received if r["method"] == "POST" and r["path"] == path]

    def answer(self, method: str, path: str, key: str, form: dict[str, str]) -> tuple[int, Any]:
        if self.failures:
            return self.failures.pop(0)
        if method == "GET" and path.startswith("/v1/refunds/"):
            refund = self.refunds.get(path.rsplit("/", 1)[-1])
            return (200, refund) if refund else (404, _missing())
        if key in self.by_key:
            return 200, self.by_key[key]
        number = len(self.by_key) + 1
        if path == "/v1/payment_intents":
            body = payment_intent(f"pi_3Fake{number:04d}", int(form["amount"]), form)
        elif path == "/v1/refunds":
            body = {
                "id": f"re_3Fake{number:04d}",
                "object": "refund",
                "amount": 2179,
                "currency": "cad",
                "payment_intent": form["payment_intent"],
                "status": self.refund_status,
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            }
            self.refunds[body["id"]] = body
        else:
            return 404, _missing()
        self.by_key[key] = body
        return 200, body


def payment_intent(ref: str, amount: int, form: dict[str, str], status: str = "") -> dict[str, Any]:
    return {
        "id": ref,
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": "cad",
        "client_secret": f"{ref}_secret_Zx9Fake",
        "status": status or "requires_payment_method",
        "automatic_payment_methods": {"enabled": True},
        "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
        "livemode": False,
    }


def _missing() -> dict[str, Any]:
    return {
        "error": {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such object",
        }
    }


@pytest.fixture
def stripe(settings: Any) -> Iterator[FakeStripe]:
    fake = FakeStripe()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            key = self.headers.get("Idempotency-Key", "")
            fake.received.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "authorization": self.headers.get("Authorization", ""),
                    "idempotency_key": key,
                    "content_type": self.headers.get("Content-Type", ""),
                    "form": form,
                }
            )
            if self.headers.get("Authorization") != f"Bearer {SECRET_KEY}":
                status, body = (
                    401,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "Invalid API Key provided",
                        }
                    },
                )
            elif self.command == "POST" and (
                not key or self.headers.get("Content-Type") != "application/x-www-form-urlencoded"
            ):
                status, body = (
                    400,
                    {"error": {"type": "invalid_request_error", "message": "Bad request"}},
                )
            else:
                status, body = fake.answer(self.command, self.path, key, form)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_API_BASE = fake.url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield fake
    server.shutdown()
    server.server_close()


def new_payment(account: User) -> Payment:
    return services.start_payment(account=account, price=finder_price())
