"""A PostgreSQL restart while patients are booking: nothing half-written, no 500, and the
service (web and worker) comes back by itself.

The real system (`manage.py serve`: gunicorn + the task worker) runs against a private
PostgreSQL cluster (tests/continuity/pgcluster.py), never the shared server. Several
clients book through the HTTP API (hold, then book) while the cluster is crashed
(`pg_ctl stop -m immediate`: no checkpoint, recovery from the WAL) and started again.
Afterwards the cluster itself is the judge, read directly with psycopg.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from rdv.audit.models import AuditEntry
from rdv.notifications.models import Message
from rdv.scheduling.models import Appointment, Slot
from tests.continuity import pgcluster
from tests.test_serve import alive, children, free_port

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = 5
SLOTS_PER_CLIENT = 150
PASSWORD = "correct horse battery"
TASKS = DBTaskResult._meta.db_table
APPOINTMENTS = Appointment._meta.db_table
SLOTS = Slot._meta.db_table
MESSAGES = Message._meta.db_table
AUDIT = AuditEntry._meta.db_table

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql" or not pgcluster.available(),
    reason="PostgreSQL suite only (with PostgreSQL 15's binaries for a private cluster)",
)

# Run in the app's own environment (the cluster's database): the people and slots the
# clients book. One JSON line out: each client's email and slot ids.
SEED = f"""
import json
from datetime import timedelta
from rdv.core import clock
from rdv.scheduling.models import Slot
from tests.factories import ClinicFactory, PatientFactory, PractitionerFactory, UserFactory
clinic = ClinicFactory.create(name="GMF Laval")
doctor = PractitionerFactory.create(clinic=clinic)
first = clock.now().replace(second=0, microsecond=0) + timedelta(days=3)
clients = []
for i in range({CLIENTS}):
    user = UserFactory.create(email=f"client{{i}}@example.test")
    PatientFactory.create(account=user, first_name=f"Client{{i}}")
    offset = i * {SLOTS_PER_CLIENT}
    starts = [first + timedelta(minutes=15 * (offset + j)) for j in range({SLOTS_PER_CLIENT})]
    slots = Slot.objects.bulk_create(
        Slot(clinic=clinic, practitioner=doctor, start=s, end=s + timedelta(minutes=15),
             appointment_type="urgent", visibility="public")
        for s in starts
    )
    clients.append({{"email": user.email, "slots": [s.pk for s in slots]}})
print(json.dumps(clients))
"""
ENQUEUE = (
    "from rdv.scheduling.tasks import extend_slot_horizon; print(extend_slot_horizon.enqueue().id)"
)


def manage(env: dict[str, str], *args: str) -> str:
    # Fixed argument list: this interpreter, the repository's manage.py.
    done = subprocess.run(  # noqa: S603  # nosec B603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def call(
    base: str, method: str, path: str, body: Any = None, token: str = ""
) -> tuple[int | str, Any]:
    """(status, JSON body), or ("connection", reason) when no HTTP answer came."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/api/v1{path}", data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept-Language", "en")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310  # nosec B310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            return error.code, json.loads(raw)
        except ValueError:
            return error.code, raw[:200]
    except OSError as error:  # refused, reset, timed out
        return "connection", str(error)


@dataclass
class Client:
    """One patient booking their own slots one after the other, until told to stop."""

    base: str
    email: str
    slots: list[int]
    token: str = ""
    booked: dict[int, int] = field(default_factory=dict)  # slot id → appointment id (2xx)
    answers: Counter[int | str] = field(default_factory=Counter)  # every call's outcome
    failures: list[tuple[str, int | str, Any]] = field(default_factory=list)
    after_recovery: int = 0  # bookings that succeeded once `recovered` was set

    def sign_in(self) -> None:
        status, body = call(
            self.base, "POST", "/auth/token", {"email": self.email, "password": PASSWORD}
        )
        assert status == 200, body
        self.token = body["token"]

    def run(self, stop: threading.Event, recovered: threading.Event) -> None:
        slots = iter(self.slots)
        slot = next(slots)
        while not stop.is_set():
            status, body = call(self.base, "POST", f"/slots/{slot}/hold", token=self.token)
            self.answers[status] += 1
            if status != 200:
                self.failures.append(("hold", status, body))
                time.sleep(0.2)  # a patient waits a moment, then tries the same time again
                continue
            status, body = call(
                self.base, "POST", "/appointments", {"slot_id": slot}, token=self.token
            )
            self.answers[status] += 1
            if status == 201:
                self.booked[slot] = body["id"]
                if recovered.is_set():
                    self.after_recovery += 1
            else:
                # Maybe booked, maybe not (the answer was lost): never retried blindly.
                self.failures.append(("book", status, body))
                time.sleep(0.2)
            slot = next(slots)


@pytest.fixture
def cluster() -> Iterator[pgcluster.Cluster]:
    with pgcluster.private_cluster() as running:
        running.create_database("rdv")
        yield running


@pytest.fixture
def app_env(cluster: pgcluster.Cluster, tmp_path: Path) -> dict[str, str]:
    var = tmp_path / "var"
    var.mkdir()
    return {
        **os.environ,
        "DATABASE_URL": cluster.url("rdv"),
        "RDV_LOCAL_ENV": os.environ.get("RDV_LOCAL_ENV", str(ROOT / "var" / "local.env")),
        "RDV_VAR_DIR": str(var),
        "AUDIT_ANCHOR_PATH": str(var / "audit-anchors.log"),
        "DEBUG": "false",
        "RATELIMIT_ENABLE": "false",  # five patients booking flat out is the point here
    }


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`manage.py serve` on a free port; stopped (then killed if need be) on the way out."""
    port = free_port()
    with log_path.open("wb") as log:
        # Fixed argument list, no shell.
        server = subprocess.Popen(  # noqa: S603  # nosec B603
            [
                sys.executable,
                "manage.py",
                "serve",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "8",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield server, f"http://127.0.0.1:{port}"
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGINT)
                try:
                    server.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait()


def ready(base: str, token: str) -> bool:
    """/readyz answers 200 and so does a read that needs the database."""
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:  # noqa: S310  # nosec B310
            if response.status != 200:
                return False
    except OSError:
        return False
    return call(base, "GET", "/appointments", token=token)[0] == 200


def test_bookings_survive_a_postgres_crash_and_the_service_comes_back_alone(
    cluster: pgcluster.Cluster,
    app_env: dict[str, str],
    tmp_path: Path,
) -> None:
    manage(app_env, "migrate", "--noinput", "-v0")
    seeded = json.loads(manage(app_env, "shell", "-c", SEED).strip().splitlines()[-1])
    serve_log = tmp_path / "serve.log"
    with serving(app_env, serve_log) as (server, base):
        clients = [Client(base, c["email"], c["slots"]) for c in seeded]
        run_the_restart(
            cluster=cluster,
            app_env=app_env,
            server=server,
            base=base,
            clients=clients,
            serve_log=serve_log,
        )


def run_the_restart(
    *,
    cluster: pgcluster.Cluster,
    app_env: dict[str, str],
    server: subprocess.Popen[bytes],
    base: str,
    clients: list[Client],
    serve_log: Path,
) -> None:

    def log_tail() -> str:
        return serve_log.read_text(errors="replace")[-6000:]

    def logged(text: str) -> bool:
        return text in serve_log.read_text(errors="replace")

    assert wait_for(lambda: call(base, "GET", "/municipalities?q=laval")[0] == 200, 60), log_tail()
    spawned = children(server.pid)
    assert len(spawned) == 2, "serve runs gunicorn and the worker"
    for client in clients:
        client.sign_in()

    stop, recovered = threading.Event(), threading.Event()
    threads = [threading.Thread(target=c.run, args=(stop, recovered), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    try:
        assert wait_for(lambda: sum(len(c.booked) for c in clients) >= 2 * CLIENTS, 60)

        cluster.stop("immediate")  # a crash, mid-transaction for some clients
        assert wait_for(lambda: sum(len(c.failures) for c in clients) >= CLIENTS, 30), (
            "nobody noticed the database was gone"
        )
        # Down until the worker too has found the database gone (it polls every second).
        assert wait_for(lambda: logged("Database unreachable"), 30), log_tail()
        cluster.start()
        recovered.set()

        assert wait_for(lambda: ready(base, clients[0].token), 30), log_tail()
        assert wait_for(lambda: all(c.after_recovery >= 2 for c in clients), 30), (
            f"bookings do not succeed again: {[c.failures[-3:] for c in clients]}"
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)

    # The same processes, never restarted: the worker survived and still works.
    assert server.poll() is None, log_tail()
    assert children(server.pid) == spawned
    assert all(alive(pid) for pid in spawned)
    assert wait_for(lambda: logged("Database reachable again"), 30), log_tail()
    task_id = manage(app_env, "shell", "-c", ENQUEUE).strip().splitlines()[-1]

    def task_status() -> str:
        with psycopg.connect(cluster.conninfo("rdv")) as db:
            row = db.execute(
                f"SELECT status FROM {TASKS} WHERE id = %s::uuid",  # noqa: S608 (a table name)
                [task_id],
            ).fetchone()
        return str(row[0]) if row else ""

    assert wait_for(lambda: task_status() == "SUCCESSFUL", 30), (task_status(), log_tail())

    # Every answer was a success, a 503 or no answer at all: never a 500, never a 4xx.
    answers: Counter[int | str] = Counter()
    for client in clients:
        answers.update(client.answers)
    assert set(answers) <= {200, 201, 503, "connection"}, (answers, log_tail())
    assert answers[503] + answers["connection"] >= CLIENTS
    for client in clients:
        for _, status, body in client.failures:
            if status == 503:
                assert body["error"]["code"] == "unavailable"

    with psycopg.connect(cluster.conninfo("rdv")) as db:
        # Table names from the models; nothing here comes from outside.
        appointments: dict[int, int] = dict(
            db.execute(f"SELECT id, slot_id FROM {APPOINTMENTS}").fetchall()  # noqa: S608
        )
        booked = db.execute(f"SELECT id FROM {SLOTS} WHERE status = 'booked'")  # noqa: S608
        booked_slots = {row[0] for row in booked}
        confirmations = Counter(
            row[0]
            for row in db.execute(
                f"SELECT appointment_id FROM {MESSAGES} WHERE kind = 'booked'"  # noqa: S608
            )
        )
        audited = Counter(
            row[0]
            for row in db.execute(
                f"SELECT object_id FROM {AUDIT} WHERE action = 'appointment.book'"  # noqa: S608
            )
        )

    # Every 2xx booking is there, on its slot.
    for client in clients:
        for slot, appointment in client.booked.items():
            assert appointments.get(appointment) == slot
    # Every appointment there is whole: its slot taken, its confirmation, its audit entry.
    assert set(appointments.values()) == booked_slots
    assert set(confirmations) == set(appointments)
    assert all(n >= 1 for n in confirmations.values())
    assert audited == Counter(str(a) for a in appointments)
    # And each is one a client asked for (a lost answer may hide a booking, never invent one).
    asked = {slot for c in clients for slot in c.slots}
    assert set(appointments.values()) <= asked
