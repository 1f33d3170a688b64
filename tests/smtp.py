"""A real SMTP server for tests (aiosmtpd), and helpers to read what it received."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class ReceivedMail:
    recipients: list[str]
    message: EmailMessage


class Inbox:
    """The aiosmtpd handler: keeps every message, parsed, and lets tests wait for one."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._received: list[ReceivedMail] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._arrived:
            self._received.append(ReceivedMail(list(envelope.rcpt_tos), message))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._arrived:
            return [mail.message for mail in self._received]

    def wait_for(self, to: str, timeout: float = 10.0) -> EmailMessage:
        """The first message to `to` (envelope recipient or To/Cc), waiting for it to come."""
        address = to.lower()

        def find() -> EmailMessage | None:
            for mail in self._received:
                header = " ".join(str(mail.message.get_all(h, [])) for h in ("To", "Cc"))
                if address in (r.lower() for r in mail.recipients) or address in header.lower():
                    return mail.message
            return None

        with self._arrived:
            found = self._arrived.wait_for(find, timeout=timeout)
        if found is None:
            pytest.fail(
                f"no email to {to} within {timeout} s; received: "
                f"{[(m.recipients, str(m.message['Subject'])) for m in self._received]}"
            )
        return found


def first_link(message: EmailMessage) -> str:
    """The first http(s) link in the message's body (plain text preferred to HTML)."""
    body = message.get_body(preferencelist=("plain", "html"))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    match = re.search(r"""https?://[^\s<>"']+""", text)
    if match is None:
        pytest.fail(f"no link in the email {message['Subject']!r}:\n{text}")
    return match.group(0).rstrip(".,;:!?)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def running_smtp_server(settings: Any) -> Iterator[Inbox]:
    """Start a server, point Django's SMTP backend at it, stop it afterwards."""
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = inbox.host
    settings.EMAIL_PORT = inbox.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    try:
        yield inbox
    finally:
        controller.stop()
