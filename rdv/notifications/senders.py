"""Handing a rendered message to the outside world: the email server, or an SMS provider.

Each sender returns the provider's id for the message, or raises DeliveryError. Email goes
through Django's email backends (SMTP in production). SMS goes to the backend named by
SMS_BACKEND: "console" and "file" for the embedded mode, "twilio" for Twilio's Messages
API (https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource).
"""

from __future__ import annotations

import base64
import json
import logging
import smtplib
import sys
import urllib.error
import urllib.parse
import urllib.request
from email.utils import formataddr, parseaddr
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMultiAlternatives

from rdv.notifications.models import Kind, Message
from rdv.notifications.render import Rendered

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """The transport did not take the message. `permanent`: retrying cannot help (a
    number the provider rejects), so the message fails at once."""

    def __init__(self, reason: str, *, permanent: bool = False, code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason[:300]
        self.permanent = permanent
        self.code = code  # the provider's error code, when it gave one


def message_id(message: Message) -> str:
    """The same Message-ID on every try: mail systems drop a duplicate with an id they
    have seen, so a retry after a crash at the worst moment is not delivered twice."""
    domain = settings.SITE_URL.split("://")[-1].split(":")[0].split("/")[0] or "rdvsante"
    return f"<{message.key.replace(':', '.')}@{domain}>"


def from_header(content: Rendered) -> str:
    """Our sending address, under the clinic's name when the message is the clinic's:
    "GMF Laval <ne-pas-repondre@…>", the name RFC 2047-encoded when it has accents.
    The address stays ours (SPF and DKIM pass; the clinic's domain is not spoofed)."""
    if not content.from_name:
        return settings.DEFAULT_FROM_EMAIL
    _our_name, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return formataddr((content.from_name, address))


def send_email(message: Message, content: Rendered) -> str:
    mail_id = message_id(message)
    headers = {"Message-ID": mail_id}
    if content.unsubscribe_url:
        # RFC 2369/8058: mail clients offer "unsubscribe" for reminders, and the provider
        # POSTs "List-Unsubscribe=One-Click" to the link itself (rdv.web.unsubscribe_views).
        headers["List-Unsubscribe"] = f"<{content.unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    email = EmailMultiAlternatives(
        subject=content.subject,
        body=content.text,
        from_email=from_header(content),
        to=[message.address],
        reply_to=[content.reply_to] if content.reply_to else None,
        headers=headers,
    )
    if content.html:
        email.attach_alternative(content.html, "text/html")
    if content.calendar is not None:
        method = "CANCEL" if message.kind == Kind.CANCELLED else "PUBLISH"
        email.attach(
            "rendez-vous.ics",
            content.calendar,
            f"text/calendar; charset=utf-8; method={method}",
        )
    try:
        email.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        permanent = isinstance(exc, smtplib.SMTPRecipientsRefused)
        raise DeliveryError(f"{type(exc).__name__}: {exc}", permanent=permanent) from exc
    return mail_id


def send_sms(message: Message, content: Rendered) -> str:
    backend = settings.SMS_BACKEND
    if backend == "twilio":
        return _twilio(message.address, content.sms)
    if backend == "file":
        path = Path(settings.SMS_FILE_PATH)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"to": message.address, "body": content.sms}) + "\n")
        return f"file-{message.pk}"
    # The console stands in for a phone, as Django's console mail backend does for an inbox:
    # the text goes to standard output, never into a log record (no number, no content).
    sys.stdout.write(f"SMS to {message.address}:\n{content.sms}\n{'-' * 40}\n")
    sys.stdout.flush()
    logger.info("SMS %s written to the console (SMS_BACKEND=console)", message.pk)
    return f"console-{message.pk}"


def _twilio(to: str, body: str) -> str:
    sid = settings.TWILIO_ACCOUNT_SID
    url = f"{settings.TWILIO_API_BASE}/2010-04-01/Accounts/{sid}/Messages.json"
    fields = {"To": to, "Body": body, "From": settings.TWILIO_FROM_NUMBER}
    if settings.TWILIO_STATUS_CALLBACK:
        fields["StatusCallback"] = settings.TWILIO_STATUS_CALLBACK
    credentials = base64.b64encode(f"{sid}:{settings.TWILIO_AUTH_TOKEN}".encode()).decode()
    request = urllib.request.Request(  # noqa: S310 (https in production, a setting)
        url,
        data=urllib.parse.urlencode(fields).encode(),
        headers={
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # nosec B310
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        code, detail = _twilio_error(exc)
        # 4xx: Twilio refused this message (bad number, unsubscribed…); 429 and 5xx pass.
        permanent = 400 <= exc.code < 500 and exc.code != 429
        raise DeliveryError(
            f"Twilio {exc.code}: {code} {detail}", permanent=permanent, code=code
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DeliveryError(f"Twilio unreachable: {type(exc).__name__}") from exc
    provider_id = answer.get("sid")
    if not isinstance(provider_id, str) or not provider_id:
        raise DeliveryError("Twilio answered without a message sid")
    return provider_id


def _twilio_error(exc: urllib.error.HTTPError) -> tuple[str, str]:
    """(Twilio's error code, its message) from an error answer's JSON body."""
    try:
        data = json.loads(exc.read() or b"{}")
    except ValueError:
        return "", "unreadable error"
    if not isinstance(data, dict):
        return "", "unreadable error"
    return str(data.get("code", "")), str(data.get("message", ""))[:200]
