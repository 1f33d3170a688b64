"""A worker killed with SIGKILL in the middle of a batch, then restarted: every message is
delivered exactly once. The worker is a real process (`manage.py send_notifications`)
against the test database; the mail server is real and counts what it accepts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from django.conf import settings
from django.db import connection

from rdv.notifications.models import Message, MessageStatus
from rdv.scheduling import services
from tests.conftest import local, make_slot
from tests.factories import PatientFactory, PractitionerFactory, UserFactory
from tests.smtp import Inbox, free_port

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
COUNT = 12
STALL_AT = 5  # the worker is killed while the server holds this message's recipient


class StallingInbox(Inbox):
    """Holds the SMTP conversation at one recipient until told to go on."""

    def __init__(self, stall_for: str) -> None:
        super().__init__()
        self.stall_for = stall_for
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address == self.stall_for and not self.release.is_set():
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"


def worker(inbox: Inbox, *args: str) -> subprocess.Popen[bytes]:
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:"
            f"{database['PORT'] or 5432}/{database['NAME']}"
        ),
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": inbox.host,
        "EMAIL_PORT": str(inbox.port),
        "NOTIFICATION_LEASE_SECONDS": "10",
        "SITE_URL": settings.SITE_URL,
    }
    command = [sys.executable, "manage.py", "send_notifications", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env)  # noqa: S603


def test_a_worker_killed_mid_batch_and_restarted_delivers_each_message_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the worker process needs a database server it can share")
    practitioner = PractitionerFactory.create()
    users = []
    for index in range(COUNT):
        user = UserFactory.create(reminders=False)
        PatientFactory.create(account=user)
        slot = make_slot(practitioner, local(2026, 11, 24, 8, 0) + timedelta(minutes=30 * index))
        services.book_appointment(user=user, slot_id=slot.pk)
        users.append(user)
    # The worker runs on the real clock, which is before the tests' frozen one.
    Message.objects.update(due_at=datetime.now(UTC) - timedelta(minutes=1))
    ordered = list(Message.objects.order_by("due_at", "id").values_list("address", flat=True))
    inbox = StallingInbox(stall_for=ordered[STALL_AT - 1])
    inbox.port = free_port()
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        first = worker(inbox, "--batch", str(COUNT), "--pause", "0.2")
        assert inbox.stalled.wait(timeout=60), "the worker never reached the stalled message"
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        inbox.release.set()
        assert len(inbox.messages) == STALL_AT - 1  # the ones before it went out
        states = set(Message.objects.values_list("status", flat=True))
        assert MessageStatus.SENDING in states  # claimed by the dead worker
        time.sleep(11)  # its lease runs out
        second = worker(inbox, "--once", "--batch", str(COUNT))
        assert second.wait(timeout=120) == 0
    finally:
        controller.stop()
    ids = [str(m["Message-ID"]) for m in inbox.messages]
    assert len(ids) == COUNT, ids
    assert len(set(ids)) == COUNT
    assert sorted(str(m["To"]) for m in inbox.messages) == sorted(u.email for u in users)
    assert set(Message.objects.values_list("status", flat=True)) == {MessageStatus.SENT}
