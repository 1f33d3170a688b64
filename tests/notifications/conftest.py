from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.smtp import Inbox, running_smtp_server


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1; Django's SMTP backend sends mail to it."""
    yield from running_smtp_server(settings)
