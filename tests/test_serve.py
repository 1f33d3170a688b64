"""`make run` serves web and worker together, and Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_tasks_db.models import DBTaskResult

from rdv.scheduling.tasks import extend_slot_horizon

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def database_url_of_the_test_database() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def start_serve(port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_the_test_database(),
        "DEBUG": "false",
        # The worker anchors the test database's audit chain: keep that out of var/.
        "AUDIT_ANCHOR_PATH": settings.AUDIT_ANCHOR_PATH,
    }
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def wait_for(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback only)
            return bool(response.status == 200)
    except OSError:
        return False


def test_serve_runs_web_and_worker_and_ctrl_c_stops_both() -> None:
    port = free_port()
    server = start_serve(port)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/municipalities?q=laval"
        assert wait_for(lambda: answers(url), timeout=30), "the web server never answered"
        result = extend_slot_horizon.enqueue()
        assert wait_for(
            lambda: DBTaskResult.objects.get(pk=result.id).status == "SUCCESSFUL", timeout=30
        ), "the worker never ran the task"
        spawned = children(server.pid)
        assert len(spawned) == 2

        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C does to the foreground group
        assert server.wait(timeout=30) == 0
        assert not any(alive(pid) for pid in spawned)
        assert not answers(url)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_killing_the_supervisor_leaves_no_orphans() -> None:
    port = free_port()
    server = start_serve(port)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/municipalities?q=laval"
        assert wait_for(lambda: answers(url), timeout=30), "the web server never answered"
        spawned = children(server.pid)
        assert len(spawned) == 2
        server.kill()
        server.wait()
        assert wait_for(lambda: not any(alive(pid) for pid in spawned), timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
