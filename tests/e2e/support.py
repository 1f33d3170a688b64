"""Helpers for end-to-end tests: what a page did wrong, accessibility, screenshots, mail.

The fixtures that use them are in conftest.py; tests import the helpers from here.
Mail helpers live in tests/smtp.py (the unit tests use the SMTP server too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import Browser, ConsoleMessage, Page, Response

TIMEOUT_MS = 10_000  # every wait: actions, navigations, expect()
AXE_SOURCE = Path(__file__).parent / "vendor" / "axe.min.js"
# WCAG 2.0 and 2.1, levels A and AA: what Quebec's SGQRI 008 standard and the federal
# accessibility rules point to.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
AXE_IMPACTS = ("serious", "critical")

# Reports the page's CSP violation events on the console, where Playwright delivers them in
# order with every other message (a test can wait for one with page.expect_console_message).
# It runs before the page's own scripts, from the DevTools protocol, so the CSP does not
# apply to it, and it keeps its own console.error in case a page replaces it.
CSP_LISTENER = """
(() => {
  const report = console.error.bind(console);
  document.addEventListener("securitypolicyviolation", (e) => {
    report(`securitypolicyviolation: ${e.effectiveDirective} blocked ${e.blockedURI || "?"}`
      + ` at ${e.sourceFile || "?"}:${e.lineNumber}`);
  }, true);
})();
"""


FAILED_LOAD = "Failed to load resource: the server responded with a status of "


@dataclass
class BrowserProblems:
    """Everything a page reported as wrong; any of it fails the test at teardown."""

    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    _console: list[tuple[str, str]] = field(default_factory=list)  # (text, url)
    _client_error_pages: set[str] = field(default_factory=set)

    @property
    def console_errors(self) -> list[str]:
        """Console errors, less the 4xx statuses of whole pages.

        A page answered with 404, 409 or 422 is the app telling the visitor something (the
        test checks what it says); Chromium logs it as a failed load all the same. A 5xx page,
        or any failed stylesheet, script, image or fetch, stays an error. Filtered when read,
        since Chromium does not order the log message after the response event.
        """
        return [
            f"{text} ({url})"
            for text, url in self._console
            if not (text.startswith(FAILED_LOAD + "4") and url in self._client_error_pages)
        ]

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        text = message.text
        # Chromium's own CSP messages ("Refused to ...", or "... violates the following
        # Content Security Policy directive ...") and our listener's event reports.
        if (
            text.startswith(("Refused to", "securitypolicyviolation:"))
            or "Content Security Policy" in text
        ):
            self.csp_violations.append(text)
            return
        url = message.location.get("url", "?")
        # Chromium asks for /favicon.ico on its own schedule when a page names no icon:
        # counting that 404 would make tests pass or fail by timing.
        if urlsplit(url).path != "/favicon.ico":
            self._console.append((text, url))

    def on_response(self, response: Response) -> None:
        if response.request.resource_type == "document" and 400 <= response.status < 500:
            self._client_error_pages.add(response.url)

    def on_page_error(self, error: Exception) -> None:
        self.page_errors.append(str(error))

    def clear(self) -> None:
        """Forget what was seen (a test that provoked a problem on purpose)."""
        self._console.clear()
        self.csp_violations.clear()
        self.page_errors.clear()

    def report(self) -> str:
        """An empty string when nothing went wrong."""
        sections = [
            ("CSP violations", self.csp_violations),
            ("console errors", self.console_errors),
            ("uncaught page errors", self.page_errors),
        ]
        return "\n".join(
            f"{title}:\n" + "\n".join(f"  - {line}" for line in lines)
            for title, lines in sections
            if lines
        )


class PageFactory:
    """Opens pages, each in a fresh browser context (cookies, storage), on the live server."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self._browser = browser
        self._base_url = base_url
        self._pages: list[tuple[Page, BrowserProblems]] = []

    def __call__(self, locale: str = "fr-CA", width: int = 1280, height: int = 900) -> Page:
        context = self._browser.new_context(
            base_url=self._base_url,
            locale=locale,
            timezone_id="America/Toronto",
            viewport={"width": width, "height": height},
        )
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        problems = BrowserProblems()
        page.on("console", problems.on_console)
        page.on("pageerror", problems.on_page_error)
        page.on("response", problems.on_response)
        self._pages.append((page, problems))
        return page

    def problems(self, page: Page) -> BrowserProblems:
        for known, problems in self._pages:
            if known is page:
                return problems
        raise LookupError("this page was not opened by make_page")

    def close_all(self) -> str:
        """Close every context; what went wrong on the pages (empty if nothing)."""
        reports = []
        for page, problems in self._pages:
            url = page.url
            # Closing drains the events Chromium sent before, so late messages are counted.
            page.context.close()
            if report := problems.report():
                reports.append(f"{url}\n{report}")
        self._pages.clear()
        return "\n\n".join(reports)


def axe_audit(page: Page) -> list[dict[str, Any]]:
    """Run axe-core on the current page: its serious and critical WCAG 2.1 AA violations.

    axe is injected with page.evaluate, which goes through the DevTools protocol and is not
    subject to the page's CSP (a <script> tag would be refused), so pages are audited under
    their real policy.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SOURCE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {
                runOnly: {type: "tag", values: tags}, resultTypes: ["violations"],
            });
            return results.violations;
        }""",
        AXE_TAGS,
    )
    return [v for v in violations if v.get("impact") in AXE_IMPACTS]


def assert_accessible(page: Page) -> None:
    """Fail with each serious or critical violation: rule, help and offending elements."""
    violations = axe_audit(page)
    if not violations:
        return
    lines = [f"{len(violations)} accessibility violation(s) on {page.url}:"]
    for violation in violations:
        lines.append(
            f"- {violation['id']} ({violation['impact']}): {violation['help']}"
            f" <{violation['helpUrl']}>"
        )
        lines.extend(f"    {node['target']}" for node in violation["nodes"])
    pytest.fail("\n".join(lines))


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as var/test-artifacts/screenshots/<name>.png (git-ignored)."""
    if not re.fullmatch(r"[\w.-]+", name):
        raise ValueError(f"screenshot name must be a plain file name: {name!r}")
    path = Path(settings.VAR_DIR) / "test-artifacts" / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True, animations="disabled")
    return path


# Re-exported: end-to-end tests import every helper from here.
from tests.smtp import Inbox, first_link  # noqa: E402

__all__ = ["Inbox", "first_link"]


def staff_sign_in(page: Page, user: Any) -> None:
    """Sign a clinic staff member in through the page, with both factors (an authenticator
    is provisioned for them, its code computed at the project's frozen time)."""
    from django_otp.oath import hotp  # noqa: PLC0415

    from rdv.accounts.mfa import provision_confirmed_totp  # noqa: PLC0415
    from rdv.core import clock  # noqa: PLC0415
    from tests.conftest import PASSWORD  # noqa: PLC0415

    device = provision_confirmed_totp(user)
    step = (int(clock.now().timestamp()) - device.t0) // device.step
    page.goto("/compte/connexion/")
    page.locator("#id_email").fill(user.email)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#id_otp").fill(f"{hotp(device.bin_key, step, digits=device.digits):06d}")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_url(lambda url: "/connexion/" not in url)
