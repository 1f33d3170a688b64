"""End-to-end tests: the app served by a live server, driven in a real headless Chromium.

The browser is Debian's Chromium (/usr/bin/chromium), never one Playwright downloads;
`make test` installs it. Every page fails its test if it logs a console error, breaks the
Content Security Policy or throws. Helpers (axe, screenshots, mail) are in support.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pytest_django.live_server_helper import LiveServer

from rdv.notifications.delivery import deliver_due
from tests.e2e.support import TIMEOUT_MS, BrowserProblems, Inbox, PageFactory
from tests.smtp import running_smtp_server

CHROMIUM = Path("/usr/bin/chromium")
# Known to work as root on these machines; the background-networking flags keep Chromium
# from calling Google's services, which the closed network refuses (slowly).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
def collected_static() -> None:
    """Collect static files once, so the live server serves what the source says now.

    Pages link to hashed names from the manifest (CompressedManifestStaticFilesStorage); a
    stale or missing staticfiles/ would give old CSS or a 500.
    """
    call_command("collectstatic", interactive=False, verbosity=0)


def _as_is(app: Any) -> Any:
    return app


class WhiteNoiseLiveServer(LiveServer):
    """pytest-django's live server, with /static/ left to WhiteNoise as in production.

    pytest-django wraps the app in staticfiles' StaticFilesHandler, which looks files up with
    the finders under their source names and so answers 404 to the hashed names
    ({% static %} gives) when DEBUG is off. WhiteNoise's middleware serves STATIC_ROOT.
    """

    def __init__(self, addr: str) -> None:
        super().__init__(addr, start=False)
        # Django types it as a handler class; any callable taking the app will do.
        self.thread.static_handler = _as_is  # type: ignore[assignment]
        self.start()


@pytest.fixture(scope="session")
def live_server(
    request: pytest.FixtureRequest, collected_static: None
) -> Iterator[WhiteNoiseLiveServer]:
    """Overrides pytest-django's fixture of the same name (same address options)."""
    addr = (
        request.config.getvalue("liveserver")
        or os.getenv("DJANGO_LIVE_TEST_SERVER_ADDRESS")
        or "localhost"
    )
    server = WhiteNoiseLiveServer(addr)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for all end-to-end tests.

    Package-scoped rather than session-scoped: while Playwright's sync API is alive, its event
    loop counts as running on the main thread, so Django refuses database calls there
    (SynchronousOnlyOperation) unless DJANGO_ALLOW_ASYNC_UNSAFE is set. Both are undone after
    the last test of tests/e2e, so the tests that follow run with Django's usual checks.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: install Debian's package with "
            "`scripts/apt_install.sh chromium` (make test does). Tests never download a browser.",
            pytrace=False,
        )
    with pytest.MonkeyPatch.context() as patch:
        # The main thread only runs test code and fixtures; nothing there is concurrent.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()


@pytest.fixture
def make_page(browser: Browser, live_server: LiveServer) -> Iterator[PageFactory]:
    """`make_page(locale="en-CA", width=390, height=844)`; relative URLs go to the live server."""
    factory = PageFactory(browser, live_server.url)
    yield factory
    if report := factory.close_all():
        pytest.fail(f"the browser reported problems:\n{report}", pytrace=False)


@pytest.fixture
def page(make_page: PageFactory) -> Page:
    """A French (Quebec) desktop page."""
    return make_page()


@pytest.fixture
def page_problems(make_page: PageFactory, page: Page) -> BrowserProblems:
    """What `page` has reported so far (tests that provoke a problem on purpose clear it)."""
    return make_page.problems(page)


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1, and a worker sending the outbox to it.

    The worker is a thread doing what `make run`'s worker does (deliver what is due), a
    few times a second: pages queue mail, they never send it themselves.
    """
    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.wait(0.2):
                try:
                    deliver_due()
                except Exception:
                    # Like the real worker, carry on; the log says why mail is missing.
                    logging.getLogger(__name__).exception("outbox worker: a sweep failed")
        finally:
            connection.close()

    worker = threading.Thread(target=work, name="outbox-worker", daemon=True)
    with contextlib.ExitStack() as stack:
        inbox = stack.enter_context(contextlib.contextmanager(running_smtp_server)(settings))
        worker.start()
        try:
            yield inbox
        finally:
            stop.set()
            worker.join(timeout=30)
