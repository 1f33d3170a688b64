"""The outbox (DESIGN.md invariant 5): every message to send is a row, written in the same
transaction as the change that causes it, and carried out by the worker.

A message is sent at most once: its `key` is unique (one confirmation per appointment and
channel, one reminder per appointment, channel and lead time…), and the worker claims a
message by compare-and-set before it sends it. Every try is an `Attempt` row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from rdv.core.fields import EncryptedTextField, in_choices


class Channel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("Text message")


class Kind(models.TextChoices):
    BOOKED = "booked", _("Booking confirmation")
    REMINDER = "reminder", _("Reminder")
    CANCELLED = "cancelled", _("Cancellation")
    MOVED = "moved", _("Moved appointment")
    MISSED = "missed", _("Missed appointment")
    # To the clinic's administrators: a message to one of their patients failed for good.
    UNDELIVERED = "undelivered", _("Message not delivered")
    # To the clinic's administrators, the evening before: a link to tomorrow's day sheet
    # (rdv.clinics.evening). `payload` names the clinic and the day.
    DAY_SHEET = "day_sheet", _("Tomorrow's day sheet")
    # About the account itself; their text is written when they are queued (`payload`).
    EMAIL_CODE = "email_code", _("Email confirmation code")
    RESET_LINK = "reset_link", _("Password reset link")
    PASSWORD_CHANGED = "pwd_changed", _("Password changed")
    # To someone invited to join a clinic's staff (rdv.clinics.staff): the link.
    STAFF_INVITATION = "staff_invite", _("Staff invitation")
    # The appointment finder (rdv.finder): a slot held for the patient to accept, a free
    # alert that a fitting slot opened, and a request refunded. Their text is written when
    # they are queued (`payload`), by email or text message.
    FINDER_OFFER = "finder_offer", _("Appointment offer")
    FINDER_ALERT = "finder_alert", _("Appointment alert")
    REFUNDED = "refunded", _("Refund")


# Messages about an account, not an appointment: written with their text (a code, a
# link), which is erased once the message is sent or given up.
ACCOUNT_KINDS = (Kind.EMAIL_CODE, Kind.RESET_LINK, Kind.PASSWORD_CHANGED, Kind.STAFF_INVITATION)
# The finder's messages: written like account messages, by email or by text message.
FINDER_KINDS = (Kind.FINDER_OFFER, Kind.FINDER_ALERT, Kind.REFUNDED)


class MessageStatus(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENDING = "sending", _("Being sent")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Not sent: no longer needed")


class Message(models.Model):
    """One email or text message to one person about one appointment, or about their
    account (a confirmation code, a password reset link)."""

    key = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    appointment = models.ForeignKey(
        "scheduling.Appointment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    # An email address or an E.164 number: personal data, so encrypted like the rest.
    address = EncryptedTextField()
    # HMAC of the address (rdv.core.crypto.blind_index): find a number's messages when the
    # person answers STOP, without decrypting anything.
    address_index = models.CharField(max_length=64, db_index=True)
    language = models.CharField(max_length=5)
    # Not before this instant (a reminder's time, or 08:00 after quiet hours).
    due_at = models.DateTimeField()
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # A worker that claimed the message owns it until then; after that (it crashed),
    # another worker may take it again.
    lease_until = models.DateTimeField(null=True, blank=True)
    provider_id = models.CharField(max_length=120, blank=True)
    # What the SMS provider reported afterwards (queued, sent, delivered, undelivered…).
    provider_status = models.CharField(max_length=20, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    # An account message's subject, text and expiry (JSON), encrypted: it holds a code or a
    # reset link. Emptied once the message is sent, given up or withdrawn.
    payload = EncryptedTextField(blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=in_choices("kind", Kind), name="message_kind_valid"),
            models.CheckConstraint(
                condition=in_choices("channel", Channel), name="message_channel_valid"
            ),
            models.CheckConstraint(
                condition=in_choices("status", MessageStatus), name="message_status_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="message_sent_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(lease_until__isnull=False),
                name="message_sending_has_lease",
            ),
        ]
        indexes = [
            # The worker's question: what is due now? Only waiting rows are indexed.
            models.Index(
                fields=["due_at", "id"],
                condition=Q(status__in=["pending", "sending"]),
                name="message_due_idx",
            ),
            models.Index(fields=["appointment", "id"], name="message_appointment_idx"),
            models.Index(fields=["provider_id"], name="message_provider_id_idx"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.kind}, {self.channel})"


class Attempt(models.Model):
    """One try at handing a message to the email server or the SMS provider."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField()
    ok = models.BooleanField()
    provider_id = models.CharField(max_length=120, blank=True)
    error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"attempt {self.pk} of message {self.message_id}"
