"""Emails about an account (sign-up code, reset link, password changed) go through the
outbox: the request never talks to the mail server, the worker sends them at once and
retries, a code that has expired is not sent, and the code or link does not stay in the
database once the message is done with."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

from django.db import connection
from django.test import Client
from django_tasks_db.models import DBTaskResult

from rdv.accounts.password_reset import request_password_reset
from rdv.accounts.privacy import delete_account
from rdv.accounts.registration import TERMS_VERSION, resend_code, sign_up
from rdv.core import clock
from rdv.notifications.delivery import deliver_due
from rdv.notifications.models import Kind, Message, MessageStatus
from rdv.notifications.tasks import deliver_now
from tests.conftest import PASSWORD, Cast
from tests.smtp import Inbox, free_port, running_smtp_server


def new_account(email: str = "nadia@example.test") -> Any:
    return sign_up(
        email=email,
        password="un mot de passe solide 42",
        first_name="Nadia",
        last_name="Tremblay",
        date_of_birth=date(1990, 5, 4),
        language="fr",
        accepted_terms_version=TERMS_VERSION,
    )


def stored_payload(message: Message) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT payload FROM notifications_message WHERE id = %s", [message.pk])
        return str(cursor.fetchone()[0])


def test_the_code_is_queued_encrypted_and_the_worker_is_woken_at_commit(
    db: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        user = new_account()
    message = Message.objects.get(recipient=user)
    assert (message.kind, message.status, message.address) == (
        Kind.EMAIL_CODE,
        MessageStatus.PENDING,
        user.email,
    )
    code = re.search(r"\b(\d{6})\b", message.payload)
    assert code is not None
    assert code.group(1) not in stored_payload(message)  # encrypted at rest
    assert DBTaskResult.objects.filter(task_path=deliver_now.module_path, status="READY").exists()


def test_sign_up_works_while_the_mail_server_is_down_and_the_code_follows(
    db: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    response = Client().post(
        "/compte/inscription/",
        {
            "email": "nadia@example.test",
            "password": PASSWORD,
            "first_name": "Nadia",
            "last_name": "Tremblay",
            "date_of_birth": "1990-05-04",
            "accept_terms": "on",
            "terms_version": TERMS_VERSION,
        },
    )
    assert response.status_code == 302, response.content
    assert deliver_due() == 0
    message = Message.objects.get(kind=Kind.EMAIL_CODE)
    assert (message.status, message.attempts) == (MessageStatus.PENDING, 1)
    assert message.last_error
    inbox_gen = running_smtp_server(settings)
    inbox: Inbox = next(inbox_gen)
    try:
        with clock.frozen_now(clock.now() + timedelta(minutes=2)):
            assert deliver_due() == 1
        mail = inbox.wait_for("nadia@example.test")
        assert re.search(r"\b\d{6}\b", str(mail["Subject"]))
    finally:
        next(inbox_gen, None)
    message.refresh_from_db()
    assert (message.status, message.payload) == (MessageStatus.SENT, "")


def test_a_code_that_expired_before_it_could_be_sent_is_not_sent(
    db: Any, smtp_server: Inbox
) -> None:
    new_account()
    with clock.frozen_now(clock.now() + timedelta(minutes=16)):
        assert deliver_due() == 0
    message = Message.objects.get(kind=Kind.EMAIL_CODE)
    assert (message.status, message.payload) == (MessageStatus.CANCELLED, "")
    assert smtp_server.messages == []


def test_a_reset_link_for_an_unknown_address_queues_nothing(cast: Cast) -> None:
    request_password_reset(email="nobody@example.test")
    assert not Message.objects.exists()
    request_password_reset(email=cast.marie.email)
    message = Message.objects.get()
    assert (message.kind, message.recipient_id) == (Kind.RESET_LINK, cast.marie.pk)
    assert "/compte/mot-de-passe/nouveau/" in message.payload


def test_the_platform_admin_sees_counts_by_status_but_never_a_code(cast: Cast) -> None:
    from django_otp.oath import totp  # noqa: PLC0415

    from rdv.accounts.mfa import provision_confirmed_totp  # noqa: PLC0415

    new_account()
    request_password_reset(email=cast.marie.email)
    cast.marc.is_staff = cast.marc.is_superuser = True
    cast.marc.save()
    device = provision_confirmed_totp(cast.marc)
    client = Client(HTTP_HOST="127.0.0.1")
    signed_in = client.post(
        "/gestion-plateforme/login/",
        {
            "username": cast.marc.email,
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": f"{totp(device.bin_key):06d}",
        },
    )
    assert signed_in.status_code == 302
    listing = client.get("/gestion-plateforme/notifications/message/")
    assert listing.status_code == 200
    page = listing.content.decode()
    # Two pending messages, counted beside the status filter (the admin speaks French).
    assert re.search(r"En attente d’envoi\s*\(2\)", page), page
    message = Message.objects.get(kind=Kind.EMAIL_CODE)
    code = re.search(r"\b(\d{6})\b", message.payload)
    assert code is not None
    detail = client.get(f"/gestion-plateforme/notifications/message/{message.pk}/change/")
    assert detail.status_code == 200
    assert code.group(1) not in detail.content.decode()
    assert "nadia@example.test" not in detail.content.decode()


def test_a_new_code_withdraws_the_one_still_waiting(db: Any) -> None:
    user = new_account()
    resend_code(user=user)
    first, second = Message.objects.filter(kind=Kind.EMAIL_CODE).order_by("id")
    assert (first.status, first.payload) == (MessageStatus.CANCELLED, "")
    assert second.status == MessageStatus.PENDING


def test_deleting_the_account_erases_a_waiting_reset_link(cast: Cast) -> None:
    request_password_reset(email=cast.marie.email)
    delete_account(cast.marie, PASSWORD)
    message = Message.objects.get(kind=Kind.RESET_LINK)
    assert (message.status, message.payload, message.address) == (
        MessageStatus.CANCELLED,
        "",
        "",
    )
