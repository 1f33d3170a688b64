"""Run the real app (`manage.py serve`: gunicorn + task worker) on a free loopback port.

It runs in its own process group so that one SIGINT reaches the serve command, gunicorn
and the worker alike, exactly like Ctrl-C in a terminal, and so that nothing is left
running after the benchmark, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from bench.client import Client

HOST = "127.0.0.1"
READY_PATH = "/api/v1/municipalities"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it; tiny race, fine on loopback)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class AppServer:
    """`with AppServer(...) as server:` starts the app and always stops it on exit."""

    def __init__(
        self,
        root: Path,
        database_url: str,
        log_path: Path,
        *,
        workers: int,
        threads: int,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.extra_env = extra_env or {}
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AppServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        command = [
            sys.executable,
            "manage.py",
            "serve",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
        ]
        # Every client here is 127.0.0.1: the abuse limits (tested in the suite) would
        # measure themselves, not the service's capacity.
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "RATELIMIT_ENABLE": "false",
            **self.extra_env,
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 (fixed argv: this interpreter and manage.py)
                command,
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = Client(HOST, self.port)
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"the server exited early; see {self.log_path}")
                if client.get(READY_PATH, {"q": "laval"}).status == 200:
                    return
                time.sleep(0.3)
        finally:
            client.close()
        raise RuntimeError(f"the server did not answer within {START_TIMEOUT_SECONDS:.0f} s")

    def stop(self) -> None:
        """SIGINT to the whole group (Ctrl-C); SIGKILL whatever is still there after 20 s."""
        process = self._process
        if process is None:
            return
        self._process = None
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        else:
            # The serve command is gone; make sure none of its children outlived it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
