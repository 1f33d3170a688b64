"""A private, throw-away PostgreSQL 15 cluster that a test may stop, crash and restart.

Never the shared server on 5432: other tests and helpers use that one. The cluster lives
in a temporary directory (data, socket, log), listens on 127.0.0.1 on a free port with
trust authentication and fsync on (a restart test is about durability), and is stopped
and deleted whatever happens.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess  # nosec B404
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
# initdb and postgres refuse to run as root: as root, everything runs as this user.
SERVER_USER = "postgres"


def available() -> bool:
    return (BIN / "pg_ctl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def run(self, *args: str, timeout: float = 60) -> None:
        command = [str(BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        # To a file, not a pipe: the server that pg_ctl starts keeps its descriptors, and
        # a pipe would never reach its end.
        with (self.root / "commands.log").open("ab") as out:
            # Fixed programs from BIN; arguments built here, no shell.
            subprocess.run(  # noqa: S603  # nosec B603
                command, check=True, timeout=timeout, stdout=out, stderr=subprocess.STDOUT
            )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=on"
        )
        self.run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: no checkpoint, recovery from the WAL at the next start."""
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w")

    def restart(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "restart", "-D", str(self.data), "-l", str(self.log), "-m", mode, "-w")

    def create_database(self, name: str) -> None:
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A running cluster; stopped and deleted on the way out, even after a failure."""
    root = Path(tempfile.mkdtemp(prefix="rdv-pg-"))
    if os.geteuid() == 0:
        server = pwd.getpwnam(SERVER_USER)
        os.chown(root, server.pw_uid, server.pw_gid)
    cluster = Cluster(root=root, port=_free_port())
    started = False
    try:
        # --no-sync: initdb's own files need no flush for a throw-away cluster; the server
        # itself runs with fsync on.
        cluster.run(
            "initdb",
            "-D",
            str(cluster.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        cluster.start()
        started = True
        yield cluster
    finally:
        try:
            if started:
                _stop_for_good(cluster)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _stop_for_good(cluster: Cluster) -> None:
    try:
        cluster.stop("immediate")
    except subprocess.SubprocessError:
        # Already down (the test stopped it), or pg_ctl failed: make sure of it.
        pid_file = cluster.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGQUIT)
