"""GET /metrics: the outbox as the operator's Prometheus sees it, behind a bearer token.

The figures come from messages written and sent by the real services; the token is
required, and without one configured the address does not exist.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from rdv.core import clock
from rdv.notifications.delivery import claim_due, deliver_due
from rdv.scheduling import services
from tests.conftest import Cast, local, make_slot
from tests.security.test_http_hardening import manage, production_env
from tests.smtp import free_port

TOKEN = "k3wQd0t5Yf9-scraper-token-for-tests-only"
STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
NOON = local(2026, 11, 30, 12, 0)  # a week after the frozen NOW: both reminders are written


@pytest.fixture(autouse=True)
def metrics_token(settings: Any) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(authorization: str | None = f"Bearer {TOKEN}", method: str = "get") -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return getattr(Client(), method)("/metrics", headers=headers)


def figures() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = scrape()
    assert response.status_code == 200, response.content
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def messages_by_status() -> dict[str, float]:
    found = figures()
    return {s: found[("rdv_notifications_messages", (("status", s),))] for s in STATUSES}


def oldest_due() -> float:
    return figures()[("rdv_notifications_oldest_due_seconds", ())]


def test_an_empty_outbox_reports_every_status_at_zero_and_nothing_else(db: Any) -> None:
    response = scrape()
    assert response.status_code == 200
    assert response["Content-Type"] == CONTENT_TYPE_LATEST
    assert "no-cache" in response["Cache-Control"]
    assert messages_by_status() == dict.fromkeys(STATUSES, 0.0)
    assert oldest_due() == 0.0
    assert {name for name, _ in figures()} == {
        "rdv_notifications_messages",
        "rdv_notifications_oldest_due_seconds",
    }  # no process or platform metrics: the registry is our own


def test_the_counts_follow_messages_through_sending_failing_and_cancelling(
    cast: Cast, settings: Any
) -> None:
    # Marie's confirmation goes out (locmem mail); her two reminders wait for their day.
    services.book_appointment(user=cast.marie, slot_id=make_slot(cast.dr_roy, NOON).pk)
    assert deliver_due() == 1
    # Paul books and cancels: his reminders are withdrawn; his confirmation and the
    # cancellation notice then meet a mail server that is down, with no retry allowed.
    paul = services.book_appointment(
        user=cast.paul, slot_id=make_slot(cast.dr_roy, NOON + timedelta(hours=1)).pk
    )
    services.cancel_appointment(user=cast.paul, appointment_id=paul.pk)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nobody listens
    settings.NOTIFICATION_MAX_ATTEMPTS = 1
    assert deliver_due() == 0
    # Each failure is reported to the clinic (an "undelivered" notice). Marie books again;
    # a worker claims what is due (those two notices, her confirmation) and is not done.
    services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, NOON + timedelta(hours=2)).pk
    )
    assert len(claim_due(now=clock.now(), limit=10)) == 3

    assert messages_by_status() == {
        "pending": 4,  # Marie's reminders, two per appointment
        "sending": 3,
        "sent": 1,
        "failed": 2,
        "cancelled": 2,
    }


def test_the_oldest_due_message_ages_while_no_worker_sends_it(cast: Cast) -> None:
    services.book_appointment(user=cast.marie, slot_id=make_slot(cast.dr_roy, NOON).pk)
    assert oldest_due() == 0.0  # the confirmation is due this very second
    with clock.frozen_now(clock.now() + timedelta(minutes=10), all_threads=True):
        assert oldest_due() == 600.0
        services.book_appointment(
            user=cast.paul, slot_id=make_slot(cast.dr_roy, NOON + timedelta(hours=1)).pk
        )
    with clock.frozen_now(clock.now() + timedelta(hours=2), all_threads=True):
        assert oldest_due() == 7200.0  # Marie's, not Paul's younger confirmation
        deliver_due()
        # Only the reminders are left, and they are not due yet.
        assert oldest_due() == 0.0
        assert messages_by_status()["pending"] == 4


def test_without_a_configured_token_there_is_no_metrics_address(settings: Any, db: Any) -> None:
    settings.METRICS_TOKEN = ""
    for authorization in (None, "Bearer ", f"Bearer {TOKEN}"):
        assert scrape(authorization).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN}x",
        TOKEN,
        f"Basic {TOKEN}",
        "Bearer é-not-ascii",
    ],
)
def test_a_missing_or_wrong_token_is_refused(db: Any, authorization: str | None) -> None:
    response = scrape(authorization)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"rdv_notifications" not in response.content


def test_the_scheme_is_case_insensitive_and_only_reads_are_answered(db: Any) -> None:
    assert scrape(f"bearer {TOKEN}").status_code == 200
    assert scrape(method="head").status_code == 200
    assert scrape(method="post").status_code == 405
    assert scrape(None, method="post").status_code == 401


def test_production_refuses_a_guessable_token_and_takes_a_long_one() -> None:
    short = manage("check", env=production_env(METRICS_TOKEN="metrics"))
    assert short.returncode != 0
    assert "METRICS_TOKEN is too short" in short.stderr
    assert manage("check", env=production_env(METRICS_TOKEN=TOKEN)).returncode == 0
