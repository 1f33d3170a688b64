"""Serve the whole system: the web app (gunicorn) and the task worker, together.

Ctrl-C (or SIGTERM) stops both; if either dies, the other is stopped too, so the system is
never half up without anyone noticing.

The children run in their own session, so a Ctrl-C reaches only this supervisor, which
then sends each child exactly one SIGTERM (a graceful stop: gunicorn finishes requests in
flight, the worker finishes its task). Should the supervisor itself be killed, Linux sends
the children SIGTERM too (parent-death signal), so nothing is left running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess  # nosec B404
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from rdv.continuity.management.commands.worker import PERIODIC_SCHEDULES

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    # Not Linux: the supervisor still stops its children on any clean exit.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _fresh_metrics_dir() -> Path:
    """The directory where web and worker processes write their counters (prometheus_client's
    multiprocess mode), emptied: counts of a previous run would otherwise add up with ours."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(settings.VAR_DIR) / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink()
    return path


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Fixed argument lists built from sys.executable, no shell.
    return subprocess.Popen(  # noqa: S603  # nosec B603
        command,
        env=env,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509
    )


class Command(BaseCommand):
    help = "Run the web server and the task worker until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--threads", type=int, default=4)

    def handle(self, *args: Any, **options: Any) -> None:
        # The worker does it too; here so the queue is ready before the first request.
        for schedule in PERIODIC_SCHEDULES:
            schedule()
        python = sys.executable
        web_cmd = [
            python,
            "-m",
            "gunicorn",
            "rdv.wsgi:application",
            "--bind",
            options["bind"],
            "--workers",
            str(options["workers"]),
            "--threads",
            str(options["threads"]),
            "--worker-class",
            "gthread",
            "--graceful-timeout",
            "10",
            # No gunicorn access log: it prints the full address (one-click tokens in
            # paths, search input in query strings). The app logs each request itself
            # (rdv.core.metrics.request_metrics).
            # The supervisor manages the lifecycle; a fixed control-socket path would
            # collide between two servers on one machine (tests, benchmarks, make run).
            "--no-control-socket",
        ]
        manage = str(settings.BASE_DIR / "manage.py")
        worker_cmd = [python, manage, "worker", "--interval", "1", "--no-startup-delay"]
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(_fresh_metrics_dir())}
        children = [_start(web_cmd, env), _start(worker_cmd, env)]
        self.stdout.write(
            f"RDV Santé is up on http://{options['bind']}/ (web + worker). Ctrl-C stops both."
        )
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.5)
        for child in children:
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 15
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        clean_exits = (0, -signal.SIGTERM, -signal.SIGINT)
        names = ("web", "worker")
        failed = [
            n for n, c in zip(names, children, strict=True) if c.returncode not in clean_exits
        ]
        if failed and not stopping:
            raise SystemExit(f"stopped because a process exited unexpectedly: {failed}")
        self.stdout.write("Stopped.")
