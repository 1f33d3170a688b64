"""The production files in deploy/ and the operations docs agree with the code.

No database: every command named exists, every setting named is read, gunicorn's
configuration runs and serves what nginx points at, nginx's configuration passes `nginx -t`
and behaves (when nginx is installed), the systemd units parse, are hardened and pass
`systemd-analyze verify` (when systemd is installed).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs"
SYSTEMD = DEPLOY / "systemd"
NGINX_SITE = DEPLOY / "nginx" / "rdv-sante.conf"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
ENV_EXAMPLE = DEPLOY / "env" / "rdv.env.example"
OPERATOR_DOCS = ["operations.md", "incident.md", "status-page.md", "backups.md", "security.md"]
HARDENING = {
    "User": "rdv",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "CapabilityBoundingSet": "",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "SystemCallArchitectures": "native",
}


# --- Helpers ------------------------------------------------------------------------------


def echo_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI app the real gunicorn serves in these tests: it tells what it was given."""
    keys = ["REMOTE_ADDR", "HTTP_X_REQUEST_ID", "HTTP_X_FORWARDED_PROTO", "HTTP_HOST"]
    seen = {key: environ.get(key, "") for key in keys}
    seen["url_scheme"] = environ["wsgi.url_scheme"]
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def _unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit as sections of (key, value) pairs; keys may repeat, as systemd allows."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}:{number}: not key=value: {raw!r}"
        assert current is not None, f"{path.name}:{number}: outside a section"
        current.append((key.strip(), value.strip()))
    return sections


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [value for name, value in section if name == key]


def _services() -> list[Path]:
    return sorted(SYSTEMD.glob("*.service"))


def _settings_names() -> set[str]:
    """Environment names the code reads: env_str("NAME") and its kind in settings and
    deploy/gunicorn.conf.py, os.environ anywhere in rdv/ and deploy/."""
    read = re.compile(
        r"(?:\b\w*env\w*\(|os\.environ\.get\(|os\.environ\[|os\.environ\.setdefault\()"
        r'\s*"([A-Z][A-Z0-9_]*)"'
    )
    names: set[str] = set()
    for source in [*(ROOT / "rdv").rglob("*.py"), *DEPLOY.rglob("*.py")]:
        names.update(read.findall(source.read_text(encoding="utf-8")))
    return names


def _env_example_names() -> list[str]:
    names = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.append(match.group(1))
    return names


def _gunicorn_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in list(os.environ):
        if name.startswith("RDV_GUNICORN_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"__file__": str(GUNICORN_CONF), "__name__": "gunicorn_conf"}
    exec(compile(GUNICORN_CONF.read_text(encoding="utf-8"), str(GUNICORN_CONF), "exec"), namespace)  # noqa: S102  # nosec B102
    return namespace


def _upstream_servers() -> list[str]:
    text = NGINX_SITE.read_text(encoding="utf-8")
    block = re.search(r"upstream rdv_app \{(.*?)\n\}", text, re.S)
    assert block, "rdv-sante.conf has no upstream rdv_app block"
    return re.findall(r"^\s*server\s+(\S+)", block.group(1), re.M)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _connectable(family: int, address: Any) -> Callable[[], bool]:
    def check() -> bool:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(address)
            except OSError:
                return False
            return True

    return check


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost")
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _replace(text: str, old: str, new: str) -> str:
    # The test rewrites the shipped file: a directive it relies on must still be there.
    assert old in text, f"rdv-sante.conf no longer contains {old!r}"
    return text.replace(old, new)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory: a unix socket's path must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="rdv-deploy-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _start_gunicorn(directory: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = directory / "gunicorn.sock"
    env = {
        **os.environ,
        "RDV_GUNICORN_SOCKET": str(sock),
        "RDV_GUNICORN_WORKERS": "1",
        "RDV_GUNICORN_THREADS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
    }
    env.pop("RDV_GUNICORN_BIND", None)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(GUNICORN_CONF),
        "tests.continuity.test_deploy_files:echo_app",
    ]
    process = subprocess.Popen(  # noqa: S603  # nosec B603
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(_connectable(socket.AF_UNIX, str(sock)), "gunicorn's socket")
    except AssertionError:
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"gunicorn did not start: {err.decode()[-2000:]}") from None
    return process, sock


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _unix_get(sock: Path, path: str, headers: dict[str, str]) -> dict[str, str]:
    connection = _UnixConnection(str(sock))
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        assert response.status == 200
        seen: dict[str, str] = json.loads(response.read())
        return seen
    finally:
        connection.close()


# --- Commands and settings named in the files ----------------------------------------------


def _named_commands() -> dict[str, set[str]]:
    pattern = re.compile(r"manage\.py\s+([a-z][a-z0-9_]*)")
    found: dict[str, set[str]] = {}
    sources = [*sorted(DEPLOY.rglob("*")), *(DOCS / name for name in OPERATOR_DOCS)]
    for source in sources:
        if source.is_file():
            for command in pattern.findall(source.read_text(encoding="utf-8")):
                found.setdefault(command, set()).add(str(source.relative_to(ROOT)))
    return found


def test_every_management_command_named_in_deploy_files_and_docs_exists() -> None:
    named = _named_commands()
    # The files name what the deployment runs: the scan must find at least these.
    assert {"worker", "backup", "migrate", "verify_audit", "read_only", "rotate_keys"} <= set(named)
    defined = get_commands()
    missing = {command: sorted(where) for command, where in named.items() if command not in defined}
    assert not missing, f"commands named but not defined: {missing}"


def test_systemd_units_run_the_worker_not_db_worker() -> None:
    worker = _unit(SYSTEMD / "rdv-worker@.service")["Service"]
    assert "manage.py worker " in _values(worker, "ExecStart")[0]
    for path in [*DEPLOY.rglob("*"), DOCS / "operations.md"]:
        if path.is_file():
            assert "manage.py db_worker" not in path.read_text(encoding="utf-8"), path


def test_every_setting_in_the_environment_example_is_read_by_the_code() -> None:
    names = _env_example_names()
    assert len(names) > 60, "the example lists every production setting"
    assert len(names) == len(set(names)), "a setting appears twice in the example"
    unknown = sorted(set(names) - _settings_names())
    assert not unknown, f"settings in rdv.env.example that nothing reads: {unknown}"


def test_the_environment_example_covers_the_continuity_settings() -> None:
    names = set(_env_example_names())
    for name in [
        "RDV_ENV",
        "READ_ONLY",
        "READ_ONLY_RETRY_AFTER_SECONDS",
        "READ_ONLY_CHECK_SECONDS",
        "BACKUP_DIR",
        "BACKUP_COPY_DIR",
        "OPERATOR_EMAILS",
        "WORKER_STALE_SECONDS",
        "LOG_FORMAT",
        "TRUST_X_FORWARDED_PROTO",
        "AUDIT_ANCHOR_PATH",
    ]:
        assert name in names, name


def test_the_environment_example_holds_no_secret() -> None:
    names = set(_env_example_names())
    secrets = {
        "SECRET_KEY",
        "FIELD_ENCRYPTION_KEYS",
        "BLIND_INDEX_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "METRICS_TOKEN",
        "EMAIL_HOST_PASSWORD",
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "TWILIO_AUTH_TOKEN",
        "BACKUP_ENCRYPTION_KEYS",
    }
    assert not names & {*secrets, *(f"{name}_FILE" for name in secrets)}


# --- gunicorn ------------------------------------------------------------------------------


def test_gunicorn_config_binds_the_socket_nginx_points_at(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _gunicorn_config(monkeypatch)
    unix = [server for server in _upstream_servers() if server.startswith("unix:")]
    assert unix == ["unix:/run/rdv/gunicorn.sock"]
    assert config["bind"] == unix
    assert config["worker_class"] == "gthread"
    assert config["workers"] == 2 * len(os.sched_getaffinity(0))
    assert config["preload_app"] is False
    assert config["accesslog"] is None
    assert config["max_requests"] > 0
    assert 0 < config["max_requests_jitter"] < config["max_requests"]
    assert config["control_socket_disable"] is True
    assert config["forwarded_allow_ips"] == "127.0.0.1,::1"


def test_gunicorn_config_binds_the_private_address_of_other_hosts_upstreams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    remote = [server for server in _upstream_servers() if not server.startswith("unix:")]
    assert remote, "the upstream shows several app servers"
    for server in remote:
        config = _gunicorn_config(
            monkeypatch,
            RDV_GUNICORN_BIND=server,
            RDV_GUNICORN_TRUSTED_PROXIES="10.0.1.11,10.0.1.12",
            RDV_GUNICORN_WORKERS="3",
        )
        assert config["bind"] == ["unix:/run/rdv/gunicorn.sock", server]
        assert config["workers"] == 3
        assert config["forwarded_allow_ips"] == "127.0.0.1,::1,10.0.1.11,10.0.1.12"


def test_gunicorn_stops_gracefully_before_systemd_and_nginx_give_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = _gunicorn_config(monkeypatch)
    web = _unit(SYSTEMD / "rdv-web.service")["Service"]
    assert config["graceful_timeout"] < int(_values(web, "TimeoutStopSec")[0].rstrip("s"))
    proxy = (DEPLOY / "nginx" / "proxy.conf").read_text(encoding="utf-8")
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", proxy)
    assert read_timeout
    assert config["timeout"] < int(read_timeout.group(1))
    keepalive = re.search(r"keepalive_timeout (\d+)s;", NGINX_SITE.read_text(encoding="utf-8"))
    assert keepalive
    assert int(keepalive.group(1)) < config["keepalive"]


def test_client_address_is_taken_from_the_proxy_only(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _gunicorn_config(monkeypatch, RDV_GUNICORN_TRUSTED_PROXIES="10.0.1.0/24")
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(environ["REMOTE_ADDR"])
        return []

    wrapped = config["client_address_from_proxy"](app)
    for peer, claimed in [
        ("", "203.0.113.7"),  # the local nginx, over the unix socket
        ("127.0.0.1", "203.0.113.8"),
        ("10.0.1.12", "2001:db8::1"),  # another host's nginx, listed
        ("198.51.100.9", "203.0.113.9"),  # anyone else: their claim is ignored
        ("", "not an address"),
    ]:
        wrapped({"REMOTE_ADDR": peer, "HTTP_X_REAL_IP": claimed}, None)
    assert seen == ["203.0.113.7", "203.0.113.8", "2001:db8::1", "198.51.100.9", ""]


def test_metrics_of_a_previous_run_are_cleared_and_a_dead_worker_leaves_live_gauges(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    metrics = tmp_path / "metrics"
    config = _gunicorn_config(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(metrics))
    metrics.mkdir()
    (metrics / "counter_111.db").write_bytes(b"")
    config["on_starting"](None)
    assert list(metrics.iterdir()) == []

    (metrics / "counter_4242.db").write_bytes(b"")
    (metrics / "gauge_livesum_4242.db").write_bytes(b"")
    (metrics / "gauge_livesum_4343.db").write_bytes(b"")

    class DeadWorker:
        pid = 4242

    config["child_exit"](None, DeadWorker())
    # Counters stay (totals never go backwards); the dead process's live gauges go.
    assert sorted(p.name for p in metrics.iterdir()) == [
        "counter_4242.db",
        "gauge_livesum_4343.db",
    ]


def test_real_gunicorn_serves_on_its_socket_with_the_proxys_client_address(
    short_tmp: Path,
) -> None:
    (short_tmp / "metrics").mkdir()
    (short_tmp / "metrics" / "counter_1.db").write_bytes(b"")
    process, sock = _start_gunicorn(short_tmp)
    try:
        seen = _unix_get(
            sock,
            "/healthz",
            {"X-Real-IP": "203.0.113.7", "X-Forwarded-Proto": "https", "Host": "rdv.example.ca"},
        )
        assert seen["REMOTE_ADDR"] == "203.0.113.7"
        assert seen["url_scheme"] == "https"
        # Group members (nginx) may connect; others may not.
        assert sock.stat().st_mode & 0o777 == 0o770
        assert not (short_tmp / "metrics" / "counter_1.db").exists()
    finally:
        _stop(process)
    assert process.returncode == 0


# --- nginx ---------------------------------------------------------------------------------


def _nginx_config(directory: Path, sock: Path, http_port: int, https_port: int) -> Path:
    cert, key = _self_signed(directory, "rdv.example.ca")
    (directory / "acme").mkdir()
    site = NGINX_SITE.read_text(encoding="utf-8")
    site = _replace(site, "unix:/run/rdv/gunicorn.sock", f"unix:{sock}")
    site = re.sub(r"^\s*server 10\.0\.\S+ .*$", "", site, flags=re.M)
    site = re.sub(r"^\s*listen \[::\].*$", "", site, flags=re.M)
    site = _replace(
        site, "listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;"
    )
    site = _replace(
        site, "listen 443 ssl default_server;", f"listen 127.0.0.1:{https_port} ssl default_server;"
    )
    site = _replace(site, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = _replace(site, "/etc/ssl/rdv/fullchain.pem", str(cert))
    site = _replace(site, "/etc/ssl/rdv/chain.pem", str(cert))
    site = _replace(site, "/etc/ssl/rdv/privkey.pem", str(key))
    site = _replace(site, "/etc/nginx/rdv/", f"{DEPLOY / 'nginx'}/")
    site = _replace(site, "/etc/nginx/rdv;", f"{DEPLOY / 'nginx'};")
    site = _replace(site, "/var/log/nginx/", f"{directory}/")
    site = _replace(site, "/var/www/acme", str(directory / "acme"))
    (directory / "site.conf").write_text(site, encoding="utf-8")
    temp = "\n".join(
        f"  {kind}_temp_path {directory / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root, nginx's workers would run as nobody, who cannot open the 0770 socket.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = directory / "nginx.conf"
    main.write_text(
        f"{user}pid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'};\n"
        f"events {{}}\nhttp {{\n{temp}\n  include {directory / 'site.conf'};\n}}\n",
        encoding="utf-8",
    )
    return main


def _https(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="rdv.example.ca") as tls:
        lines = [f"GET {path} HTTP/1.1", "Host: rdv.example.ca", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        tls.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        return response.status, response.headers, response.read().decode()


nginx = shutil.which("nginx")


def _nginx_paths(main: Path, directory: Path) -> list[str]:
    # -e: nginx opens its error log before reading the configuration (/var/log as non-root).
    return ["-c", str(main), "-p", str(directory), "-e", str(directory / "error.log")]


@pytest.mark.skipif(nginx is None, reason="nginx is not installed")
def test_nginx_config_passes_nginx_t_and_proxies_to_gunicorn(short_tmp: Path) -> None:
    assert nginx
    http_port, https_port = _free_port(), _free_port()
    process, sock = _start_gunicorn(short_tmp)
    main = _nginx_config(short_tmp, sock, http_port, https_port)
    check = subprocess.run(  # noqa: S603  # nosec B603
        [nginx, "-t", "-q", *_nginx_paths(main, short_tmp)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Only the warning about stapling a self-signed certificate (no OCSP responder).
    problems = [
        line for line in check.stderr.splitlines() if "ssl_stapling" not in line and line.strip()
    ]
    assert check.returncode == 0, check.stderr
    assert not problems, check.stderr
    server = subprocess.Popen(  # noqa: S603  # nosec B603
        [nginx, *_nginx_paths(main, short_tmp), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(_connectable(socket.AF_INET, ("127.0.0.1", https_port)), "nginx")

        # The client's own address and request id claims are replaced; a sane id is kept.
        status, _, body = _https(https_port, "/", {"X-Real-IP": "203.0.113.9"})
        seen = json.loads(body)
        assert status == 200
        assert seen["REMOTE_ADDR"] == "127.0.0.1"
        assert seen["url_scheme"] == "https"
        assert seen["HTTP_X_FORWARDED_PROTO"] == "https"
        assert re.fullmatch(r"[0-9a-f]{32}", seen["HTTP_X_REQUEST_ID"])
        _, _, body = _https(https_port, "/", {"X-Request-Id": "lb-7f3a9c01"})
        assert json.loads(body)["HTTP_X_REQUEST_ID"] == "lb-7f3a9c01"
        _, _, body = _https(https_port, "/", {"X-Request-Id": "<script>alert(1)</script>"})
        assert re.fullmatch(r"[0-9a-f]{32}", json.loads(body)["HTTP_X_REQUEST_ID"])

        # Metrics and readiness: not from outside the monitoring network.
        assert _https(https_port, "/metrics")[0] == 403
        assert _https(https_port, "/readyz")[0] == 403
        assert _https(https_port, "/healthz")[0] == 200

        # Plain HTTP: a redirect to the fixed public name, whatever Host was sent.
        connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        connection.request("GET", "/chercheur/?a=1", headers={"Host": "evil.example"})
        redirect = connection.getresponse()
        assert redirect.status == 301
        assert redirect.headers["Location"] == "https://rdv.example.ca/chercheur/?a=1"
        connection.close()

        # Another name on 443 gets no certificate at all.
        raw = socket.create_connection(("127.0.0.1", https_port), timeout=10)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw, server_hostname="other.example")
        raw.close()

        # No app server answering: the bilingual page that points at the status page.
        _stop(process)
        status, _, body = _https(https_port, "/")
        assert status == 502
        assert "statut.rdvsante.example" in body
        assert "temporarily unavailable" in body
    finally:
        _stop(server, signal.SIGQUIT)
        _stop(process)


# --- systemd -------------------------------------------------------------------------------


def test_every_service_is_hardened() -> None:
    assert {p.name for p in _services()} >= {
        "rdv-web.service",
        "rdv-worker@.service",
        "rdv-migrate.service",
        "rdv-backup.service",
        "rdv-alert@.service",
    }
    for path in _services():
        service = _unit(path)["Service"]
        for key, expected in HARDENING.items():
            assert _values(service, key) == [expected], f"{path.name}: {key}"
        assert "@system-service" in _values(service, "SystemCallFilter"), path.name


def test_services_write_only_where_they_must() -> None:
    expected = {
        "rdv-web.service": {"/run/rdv", "/var/lib/rdv"},
        "rdv-worker@.service": {"/var/lib/rdv", "/mnt/rdv-audit-anchors"},
        "rdv-backup.service": {"/var/lib/rdv", "/mnt/rdv-backup-copy"},
    }
    env = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if re.match(r"[A-Z]", line)
    )
    for name, paths in expected.items():
        service = _unit(SYSTEMD / name)["Service"]
        assert set(" ".join(_values(service, "ReadWritePaths")).split()) == paths, name
    # What the settings point at is writable by the units that write it.
    assert env["AUDIT_ANCHOR_PATH"].startswith("/mnt/rdv-audit-anchors/")
    assert env["BACKUP_COPY_DIR"] == "/mnt/rdv-backup-copy"
    assert env["BACKUP_DIR"].startswith("/var/lib/rdv/")
    assert env["RDV_VAR_DIR"] == "/var/lib/rdv"


def test_secrets_come_from_credentials_and_name_real_settings() -> None:
    names = _settings_names()
    for path in _services():
        service = _unit(path)["Service"]
        loaded = {
            v.split(":", 1)[0]: v.split(":", 1)[1] for v in _values(service, "LoadCredential")
        }
        pointed = {}
        for assignment in _values(service, "Environment"):
            name, _, value = assignment.partition("=")
            if name.endswith("_FILE"):
                assert name.removesuffix("_FILE") in names, f"{path.name}: {name}"
                assert value.startswith("/run/credentials/%n/"), f"{path.name}: {name}"
                pointed[value.removeprefix("/run/credentials/%n/")] = name
        assert set(pointed) == set(loaded), path.name
        assert all(source.startswith("/etc/rdv/credentials/") for source in loaded.values())
        assert _values(service, "EnvironmentFile") == ["/etc/rdv/rdv.env"], path.name
    backup = _unit(SYSTEMD / "rdv-backup.service")["Service"]
    assert any("backup-encryption-keys" in v for v in _values(backup, "LoadCredential"))
    for name in ("rdv-web.service", "rdv-worker@.service"):
        service = _unit(SYSTEMD / name)["Service"]
        # The backup keys stay away from the hosts' internet-facing processes.
        assert not any("backup" in v for v in _values(service, "LoadCredential")), name
    migrate = _unit(SYSTEMD / "rdv-migrate.service")["Service"]
    assert "database-url:/etc/rdv/credentials/database-url-owner" in _values(
        migrate, "LoadCredential"
    )


def test_failures_alert_and_timers_start_their_services() -> None:
    for name in (
        "rdv-worker@.service",
        "rdv-backup.service",
        "rdv-migrate.service",
        "rdv-verify-audit.service",
    ):
        assert _values(_unit(SYSTEMD / name)["Unit"], "OnFailure") == ["rdv-alert@%n.service"]
    for timer in SYSTEMD.glob("*.timer"):
        service = SYSTEMD / timer.name.replace(".timer", ".service")
        assert service.is_file(), timer.name
        assert _values(_unit(timer)["Timer"], "Persistent") == ["yes"]
    assert _values(_unit(SYSTEMD / "rdv-backup.timer")["Timer"], "OnCalendar") == ["hourly"]
    for name in ("rdv-web.service", "rdv-worker@.service"):
        assert "rdv-migrate.service" in _values(_unit(SYSTEMD / name)["Unit"], "After")[0]


systemd_analyze = shutil.which("systemd-analyze")


@pytest.mark.skipif(systemd_analyze is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path) -> None:
    assert systemd_analyze
    # The units point at /opt/rdv/current; here the release is this checkout.
    for path in SYSTEMD.iterdir():
        text = path.read_text(encoding="utf-8").replace("/opt/rdv/current", str(ROOT))
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    names = [
        "rdv-web.service",
        "rdv-worker@1.service",
        "rdv-migrate.service",
        "rdv-backup.service",
        "rdv-backup.timer",
        "rdv-verify-audit.service",
        "rdv-verify-audit.timer",
        "rdv-alert@rdv-backup.service.service",
    ]
    result = subprocess.run(  # noqa: S603  # nosec B603
        [systemd_analyze, "verify", "--man=no", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "notice"},
    )
    ours = [line for line in result.stderr.splitlines() if "rdv-" in line]
    assert result.returncode == 0, result.stderr
    assert not ours, result.stderr


# --- The alert hook --------------------------------------------------------------------------


def _run_alert(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ["PATH"],
        "RDV_ENV": "development",
        "RDV_LOCAL_ENV": str(tmp_path / "none.env"),
        "RDV_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "test-only-key-for-the-alert-hook",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }
    return subprocess.run(  # noqa: S603  # nosec B603
        [sys.executable, str(DEPLOY / "bin" / "rdv_alert.py"), "rdv-backup.service"],
        capture_output=True,
        text=True,
        check=False,
        env={**base, **env},
        timeout=60,
    )


def test_alert_hook_posts_to_the_webhook_and_mails_the_operators(tmp_path: Path) -> None:
    received: list[dict[str, str]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url_file = tmp_path / "alert-webhook-url"
    url_file.write_text(f"http://127.0.0.1:{server.server_port}/hook\n", encoding="utf-8")
    try:
        result = _run_alert(
            tmp_path,
            RDV_ALERT_WEBHOOK_URL_FILE=str(url_file),
            OPERATOR_EMAILS="ops@rdvsante.example",
        )
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert len(received) == 1
    assert "rdv-backup.service failed on" in received[0]["text"]
    assert "To: ops@rdvsante.example" in result.stdout
    assert "rdv-backup.service failed on" in result.stdout


def test_alert_hook_fails_loudly_when_nobody_can_be_told(tmp_path: Path) -> None:
    result = _run_alert(tmp_path, RDV_ALERT_WEBHOOK_URL="http://127.0.0.1:9/closed")
    assert result.returncode == 1
    assert "webhook failed" in result.stderr
    assert "NOBODY WAS TOLD" in result.stderr


# --- Status page and the outage page -----------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.languages: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.links.append(values[name] or "")
        if values.get("lang"):
            self.languages.add(values["lang"] or "")


@pytest.mark.parametrize(
    "path", [DEPLOY / "status" / "index.html", DEPLOY / "nginx" / "rdv-unavailable.html"]
)
def test_outage_pages_are_bilingual_self_contained_and_scriptless(path: Path) -> None:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    assert "script" not in page.tags
    assert not any(tag in page.tags for tag in ("link", "img", "iframe"))
    assert {"fr", "en"} <= page.languages
    assert all(link.startswith("https://") for link in page.links)


def test_status_page_is_hosted_elsewhere_and_linked_from_the_outage_page() -> None:
    status_doc = (DOCS / "status-page.md").read_text(encoding="utf-8")
    address = re.search(r"`(https://statut\.[^`/]+/)`", status_doc)
    assert address
    outage = (DEPLOY / "nginx" / "rdv-unavailable.html").read_text(encoding="utf-8")
    assert address.group(1) in outage
    # Not one of the names our nginx serves: it must not depend on us.
    host = address.group(1).split("/")[2]
    assert host not in NGINX_SITE.read_text(encoding="utf-8").split("server_name", 1)[1]
