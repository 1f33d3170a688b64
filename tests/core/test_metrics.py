"""GET /metrics: the outbox as the operator's Prometheus sees it, behind a bearer token.

The figures come from messages written and sent by the real services; the token is
required, and without one configured the address does not exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, transaction
from django.test import Client
from django_tasks_db.models import DBTaskResult
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from rdv.audit import services as audit
from rdv.billing import services as billing
from rdv.continuity import status as backup_status
from rdv.core import clock
from rdv.core.errors import SlotUnavailable
from rdv.finder import services as finder_services
from rdv.notifications.delivery import claim_due, deliver_due
from rdv.scheduling import services
from rdv.scheduling.tasks import schedule_horizon_extension
from tests.billing.conftest import new_payment
from tests.conftest import Cast, local, make_slot
from tests.security.test_http_hardening import manage, production_env
from tests.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "k3wQd0t5Yf9-scraper-token-for-tests-only"
STATUSES = ("pending", "sending", "sent", "failed", "cancelled")
NOON = local(2026, 11, 30, 12, 0)  # a week after the frozen NOW: both reminders are written
EVERY_SERIES = {
    "rdv_notifications_messages",
    "rdv_notifications_oldest_due_seconds",
    "rdv_finder_pending_events",
    "rdv_finder_requests",
    "rdv_finder_oldest_pending_event_seconds",
    "rdv_audit_unsealed_entries",
    "rdv_audit_oldest_unsealed_seconds",
    "rdv_billing_refunds",
    "rdv_worker_oldest_due_task_seconds",
    "rdv_database_up",
    "rdv_backup_failures_total",
    "rdv_backup_consecutive_failures",
    "rdv_backup_last_success_timestamp_seconds",
    "rdv_backup_last_failure_timestamp_seconds",
    "rdv_backup_max_age_seconds",
    "rdv_read_only",
    "rdv_http_requests_total",
    "rdv_http_request_duration_seconds_bucket",
    "rdv_http_request_duration_seconds_count",
    "rdv_http_request_duration_seconds_sum",
    "rdv_appointments_booked_total",
    "rdv_appointments_cancelled_total",
}


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
    assert {name for name, _ in figures()} <= EVERY_SERIES
    found = figures()
    for status in ("awaiting_payment", "open", "booked", "expired", "cancelled"):
        assert found[("rdv_finder_requests", (("status", status),))] == 0
    for status in ("pending", "succeeded", "failed"):
        assert found[("rdv_billing_refunds", (("status", status),))] == 0
    # No process or platform metrics: the registry is our own.
    assert not any(name.startswith(("process_", "python_")) for name, _ in figures())


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


# --- Requests, bookings, backlogs, backups -----------------------------------------------


def value(name: str, **labels: str) -> float:
    """One series' value at a fresh scrape; 0 when the series does not exist yet."""
    return figures().get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_never_by_their_address(db: Any) -> None:
    link = "/r/cancel/s3cr3t-one-click-token/"
    before = value("rdv_http_requests_total", method="GET", route="/healthz", status="200")
    before_link = value(
        "rdv_http_requests_total",
        method="GET",
        route="/r/<str:purpose>/<str:token>/",
        status="404",
    )
    before_unmatched = value(
        "rdv_http_requests_total", method="GET", route="unmatched", status="404"
    )
    before_timed = value("rdv_http_request_duration_seconds_count", method="GET", route="/healthz")

    client = Client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get(link).status_code == 404  # an unknown token: the route matched
    assert client.get("/no/such/page/?name=Marie").status_code == 404

    assert value("rdv_http_requests_total", method="GET", route="/healthz", status="200") == (
        before + 2
    )
    assert value(
        "rdv_http_requests_total",
        method="GET",
        route="/r/<str:purpose>/<str:token>/",
        status="404",
    ) == (before_link + 1)
    assert value("rdv_http_requests_total", method="GET", route="unmatched", status="404") == (
        before_unmatched + 1
    )
    timed = value("rdv_http_request_duration_seconds_count", method="GET", route="/healthz")
    assert timed == before_timed + 2
    page = scrape().content.decode()
    assert "s3cr3t" not in page
    assert "no/such/page" not in page
    assert "Marie" not in page


def test_an_unknown_method_is_counted_as_other(db: Any) -> None:
    before = value("rdv_http_requests_total", method="other", route="/healthz", status="200")
    Client().generic("BREW", "/healthz")
    assert value("rdv_http_requests_total", method="other", route="/healthz", status="200") == (
        before + 1
    )


def test_bookings_and_cancellations_are_counted_once_committed(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    def booked(channel: str) -> float:
        return value("rdv_appointments_booked_total", channel=channel)

    online, clinic = booked("online"), booked("clinic")
    by_patient = value("rdv_appointments_cancelled_total", by="patient")
    with django_capture_on_commit_callbacks(execute=True):
        marie = services.book_appointment(user=cast.marie, slot_id=make_slot(cast.dr_roy, NOON).pk)
        services.cancel_appointment(user=cast.marie, appointment_id=marie.pk)
    assert booked("online") == online + 1
    assert value("rdv_appointments_cancelled_total", by="patient") == by_patient + 1

    # A booking that is refused (the slot is taken) writes nothing, and counts nothing.
    taken = make_slot(cast.dr_roy, NOON + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        services.book_appointment(user=cast.paul, slot_id=taken.pk)
    assert callbacks  # the counter waited for the commit
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(SlotUnavailable):
        services.book_appointment(user=cast.marie, slot_id=taken.pk)
    assert booked("online") == online + 2
    assert booked("clinic") == clinic


def test_the_finder_and_audit_backlogs_follow_what_is_waiting(cast: Cast) -> None:
    appointment = services.book_appointment(
        user=cast.marie, slot_id=make_slot(cast.dr_roy, NOON).pk
    )
    unsealed = value("rdv_audit_unsealed_entries")
    assert unsealed >= 1  # the booking's entry, sealed only after its commit
    events = value("rdv_finder_pending_events")
    with clock.frozen_now(clock.now() + timedelta(minutes=5), all_threads=True):
        services.cancel_appointment(user=cast.marie, appointment_id=appointment.pk)
        assert value("rdv_finder_pending_events") == events + 1  # the freed slot
    with clock.frozen_now(clock.now() + timedelta(minutes=10), all_threads=True):
        assert value("rdv_audit_oldest_unsealed_seconds") == 600.0
        assert value("rdv_finder_oldest_pending_event_seconds") == 300.0
        audit.seal_pending()
        assert value("rdv_audit_unsealed_entries") == 0
        assert value("rdv_audit_oldest_unsealed_seconds") == 0


def test_failed_refunds_are_counted(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    # Billing's own tests stand in for the finder the same way: a payment here pays for
    # nothing the finder knows of.
    monkeypatch.setattr(finder_services, "on_payment_succeeded", lambda payment: None)
    refunds = []
    for account in (cast.marie, cast.paul):
        payment = billing.create_with_provider(new_payment(account).pk)
        billing.payment_succeeded(provider=payment.provider, provider_ref=payment.provider_ref)
        with transaction.atomic():
            refunds.append(billing.request_refund(payment, reason="deadline"))
    assert value("rdv_billing_refunds", status="pending") == 2
    assert value("rdv_billing_refunds", status="failed") == 0
    first = refunds[0]
    assert first is not None
    assert billing.refund_failed(first.pk, provider_ref="", error="card closed")
    assert value("rdv_billing_refunds", status="pending") == 1
    assert value("rdv_billing_refunds", status="failed") == 1
    assert value("rdv_billing_refunds", status="succeeded") == 0


def test_backup_figures_come_from_the_status_file(db: Any, settings: Any, tmp_path: Any) -> None:
    settings.BACKUP_DIR = tmp_path
    settings.BACKUP_MAX_AGE_MINUTES = 90
    assert value("rdv_backup_last_success_timestamp_seconds") == 0  # never
    assert value("rdv_backup_failures_total") == 0
    first, second = clock.now() - timedelta(hours=3), clock.now() - timedelta(hours=2)
    backup_status.record_failure(first, "disk full")
    backup_status.record_failure(second, "disk full")
    assert value("rdv_backup_failures_total") == 2
    assert value("rdv_backup_consecutive_failures") == 2
    assert value("rdv_backup_last_failure_timestamp_seconds") == second.timestamp()
    success = clock.now() - timedelta(hours=1)
    backup_status.record_success(success, "rdv-1.tar.enc")
    assert value("rdv_backup_failures_total") == 2  # a counter: never goes back
    assert value("rdv_backup_consecutive_failures") == 0
    assert value("rdv_backup_last_success_timestamp_seconds") == success.timestamp()
    assert value("rdv_backup_max_age_seconds") == 5400


def test_the_read_only_mode_and_the_worker_backlog_are_reported(db: Any, settings: Any) -> None:
    assert value("rdv_read_only") == 0
    settings.READ_ONLY = True
    assert value("rdv_read_only") == 1
    settings.READ_ONLY = False
    assert value("rdv_worker_oldest_due_task_seconds") == 0
    schedule_horizon_extension()  # due at 02:30 tomorrow
    task = DBTaskResult.objects.get()
    with clock.frozen_now(task.run_after + timedelta(minutes=3), all_threads=True):
        assert value("rdv_worker_oldest_due_task_seconds") == 180


def refuse_every_query(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    raise OperationalError("server closed the connection unexpectedly")


def test_a_scrape_with_the_database_down_still_answers(
    db: Any, settings: Any, tmp_path: Any
) -> None:
    settings.BACKUP_DIR = tmp_path
    backup_status.record_failure(clock.now(), "database unreachable")
    with connection.execute_wrapper(refuse_every_query):
        found = figures()
    names = {name for name, _ in found}
    assert found[("rdv_database_up", ())] == 0
    assert found[("rdv_backup_failures_total", ())] == 1  # from the file, still there
    assert "rdv_read_only" in names
    assert not names & {"rdv_notifications_messages", "rdv_billing_refunds"}
    assert value("rdv_database_up") == 1  # back


def test_processes_add_up_their_counts_in_multiprocess_mode(tmp_path: Any) -> None:
    """Two processes (two gunicorn workers) each answer a request; a third answers the
    scrape and reports both."""
    metrics_dir = tmp_path / "metrics"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "METRICS_TOKEN": TOKEN,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",  # no tables: database_up 0
        "DEBUG": "false",
    }
    for _ in range(2):
        assert in_another_process("/healthz", env).startswith("200")
    page = in_another_process("/metrics", env)
    assert page.startswith("200")
    assert 'rdv_http_requests_total{method="GET",route="/healthz",status="200"} 2.0' in page
    assert "rdv_database_up 0.0" in page
    assert len(list(metrics_dir.glob("counter_*.db"))) == 3


def in_another_process(path: str, env: dict[str, str]) -> str:
    script = (
        "import django, sys; django.setup(); from django.test import Client; "
        "r = Client(HTTP_HOST='localhost').get(sys.argv[1], "
        "headers={'Authorization': 'Bearer ' + sys.argv[2]}); "
        "print(r.status_code); print(r.content.decode())"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", script, path, TOKEN],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "rdv.settings"},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout
