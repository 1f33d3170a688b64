"""Gunicorn in production: `gunicorn -c deploy/gunicorn.conf.py` (deploy/systemd/rdv-web.service).

The web processes listen on a unix socket that only the local nginx can open (the socket is
group `rdv`, no access for others, and nginx's user is in that group). On a multi-host
deployment the nginx of another host reaches this one on a private address listed in
RDV_GUNICORN_BIND, firewalled to those hosts, which RDV_GUNICORN_TRUSTED_PROXIES names.

Every value can be overridden from the environment (deploy/env/rdv.env.example); a value
that does not parse stops the start, like the application's own settings.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

WsgiApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def _cpu_count() -> int:
    # The CPUs this process may run on (systemd's CPUAffinity=, a container's cpuset),
    # not the machine's.
    return len(os.sched_getaffinity(0))


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _list_env(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


SOCKET_PATH = os.environ.get("RDV_GUNICORN_SOCKET", "/run/rdv/gunicorn.sock")
TRUSTED_PROXIES = _list_env("RDV_GUNICORN_TRUSTED_PROXIES")

wsgi_app = "rdv.wsgi:application"
proc_name = "rdv-web"
bind = [f"unix:{SOCKET_PATH}", *_list_env("RDV_GUNICORN_BIND")]
# The socket file is created rw for user and group only: nginx (group rdv) and nobody else.
umask = 0o007

# Threads overlap the waits on PostgreSQL; processes use the cores. Each thread may hold
# one persistent database connection (CONN_MAX_AGE), so PostgreSQL's max_connections must
# cover app servers × workers × threads (docs/operations.md).
worker_class = "gthread"
workers = _int_env("RDV_GUNICORN_WORKERS", 2 * _cpu_count())
threads = _int_env("RDV_GUNICORN_THREADS", 4)
# Imported after the fork, in every worker: no database connection or random state is
# shared between processes, and a HUP reloads new code without a full restart.
preload_app = False
# A slow leak cannot grow forever; the jitter keeps workers from restarting together.
max_requests = _int_env("RDV_GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int_env("RDV_GUNICORN_MAX_REQUESTS_JITTER", 500)
timeout = _int_env("RDV_GUNICORN_TIMEOUT", 30)
# Shorter than systemd's TimeoutStopSec (35 s) so requests in flight finish before a kill.
graceful_timeout = _int_env("RDV_GUNICORN_GRACEFUL_TIMEOUT", 25)
# Longer than nginx's upstream keepalive_timeout (60 s): nginx closes an idle connection
# first, so it never sends a request on a connection gunicorn is closing.
keepalive = 75
# The heartbeat file on tmpfs (systemd's RuntimeDirectory), never on a disk that can stall.
worker_tmp_dir = os.environ.get("RUNTIME_DIRECTORY") or None
# systemd supervises the process; gunicorn's control socket would want a writable $HOME.
control_socket_disable = True

# Only the local nginx (the unix socket) and the listed proxies may say the request came
# over https (X-Forwarded-Proto); Django also needs TRUST_X_FORWARDED_PROTO=true.
forwarded_allow_ips = ",".join(["127.0.0.1", "::1", *TRUSTED_PROXIES])
# The application logs each request itself (route, status, duration, request id), never
# the raw URL: paths carry one-click tokens and query strings carry what patients typed.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("RDV_GUNICORN_LOG_LEVEL", "info")


def _trusted_peer(peer: str) -> bool:
    """A unix-socket peer (empty address) is the local nginx; others must be listed."""
    if not peer:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if address.is_loopback:
        return True
    return any(address in ipaddress.ip_network(net, strict=False) for net in TRUSTED_PROXIES)


def client_address_from_proxy(app: WsgiApp) -> WsgiApp:
    """Put the client's address (nginx's X-Real-IP) in REMOTE_ADDR for trusted peers.

    Over a unix socket REMOTE_ADDR is empty: rate limits per IP and the audit log's
    addresses read REMOTE_ADDR (rdv.audit.context, rdv.api.limits), so the proxy's word
    is taken here, and only from the proxy. nginx overwrites X-Real-IP on every request.
    """

    def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if _trusted_peer(environ.get("REMOTE_ADDR", "")):
            claimed = environ.get("HTTP_X_REAL_IP", "").strip()
            # No usable address from the proxy: the peer's stays.
            with contextlib.suppress(ValueError):
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(claimed))
        return app(environ, start_response)

    return wrapped


def post_worker_init(worker: Any) -> None:
    worker.wsgi = client_address_from_proxy(worker.wsgi)


def _multiprocess_dir() -> Path | None:
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    return Path(value) if value else None


def on_starting(server: Any) -> None:
    """Start the metrics of this run from zero: files of a previous run's workers would be
    added to the new ones (and their gauges reported as live)."""
    directory = _multiprocess_dir()
    if directory is None:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """A worker that exits (max_requests, a crash, a HUP) stops counting in live gauges;
    its counters stay, so totals never go backwards."""
    if _multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess  # noqa: PLC0415  # only in multiprocess mode

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
