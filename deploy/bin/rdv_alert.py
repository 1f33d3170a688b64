#!/usr/bin/env python3
"""Tell the operators that a systemd unit failed: `rdv_alert.py UNIT` (rdv-alert@.service).

Posts a JSON message to RDV_ALERT_WEBHOOK_URL (or the file RDV_ALERT_WEBHOOK_URL_FILE
names: a chat channel or the pager's inbound hook) and mails OPERATOR_EMAILS through the
application's SMTP settings. The message names the unit and the host, nothing from the
unit's output: the journal is read on the host. Exits 1 only when nobody could be told.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _webhook_url() -> str:
    path = os.environ.get("RDV_ALERT_WEBHOOK_URL_FILE", "")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get("RDV_ALERT_WEBHOOK_URL", "").strip()


def alert_text(unit: str, host: str, when: datetime) -> str:
    return (
        f"[RDV Santé] {unit} failed on {host} at {when:%Y-%m-%d %H:%M:%S} UTC.\n"
        f"Read: journalctl -u {unit} -n 100 (on {host}). "
        "Runbook: docs/incident.md and docs/operations.md."
    )


def post_webhook(url: str, text: str) -> None:
    if not url.startswith("https://") and not url.startswith("http://127.0.0.1"):
        raise ValueError("the alert webhook must be an https:// address")
    body = json.dumps({"text": text}).encode()
    request = urllib.request.Request(  # noqa: S310  # scheme checked above
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
        response.read()


def send_mail(subject: str, text: str) -> bool:
    """Mail OPERATOR_EMAILS with Django's mail settings; False when there is nobody to mail."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rdv.settings")
    import django  # noqa: PLC0415  # settings load only when mail is wanted
    from django.conf import settings  # noqa: PLC0415
    from django.core.mail import send_mail as django_send_mail  # noqa: PLC0415

    django.setup()
    if not settings.OPERATOR_EMAILS:
        return False
    django_send_mail(subject, text, None, settings.OPERATOR_EMAILS)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: rdv_alert.py UNIT", file=sys.stderr)
        return 2
    unit, host = argv[1], socket.gethostname()
    text = alert_text(unit, host, datetime.now(UTC))
    told = 0
    url = _webhook_url()
    if url:
        try:
            post_webhook(url, text)
            told += 1
        except Exception as exc:  # one channel failing must not silence the other
            print(f"rdv-alert: webhook failed: {exc}", file=sys.stderr)
    try:
        told += send_mail(f"[RDV Santé] {unit} failed on {host}", text)
    except Exception as exc:
        print(f"rdv-alert: mail failed: {exc}", file=sys.stderr)
    if not told:
        print(f"rdv-alert: NOBODY WAS TOLD: {text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
