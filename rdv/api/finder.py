"""/api/v1/finder: the appointment finder's requests, offers, receipts and alerts."""

from ninja import Router

router = Router(tags=["finder"])
