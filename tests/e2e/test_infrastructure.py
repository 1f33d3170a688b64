"""The end-to-end fixtures themselves work: Chromium, static files, CSP watch, axe, mail."""

from __future__ import annotations

import re

from django.core.mail import send_mail
from playwright.sync_api import Page, expect

from tests.e2e.support import (
    FAILED_LOAD,
    BrowserProblems,
    Inbox,
    PageFactory,
    axe_audit,
    first_link,
    screenshot,
)

# A computed-style fingerprint of the page's main elements; it changes when the stylesheets
# are switched off only if they really applied.
STYLE_FINGERPRINT = """(disabled) => {
    for (const sheet of document.styleSheets) sheet.disabled = disabled;
    const parts = [];
    for (const el of document.querySelectorAll("html, body, main, h1, a")) {
        const style = getComputedStyle(el);
        for (const name of style) parts.push(`${name}:${style.getPropertyValue(name)}`);
    }
    for (const sheet of document.styleSheets) sheet.disabled = false;
    return parts.join(";");
}"""


def test_home_page_loads_with_its_stylesheet_under_the_csp(page: Page) -> None:
    with page.expect_response(re.compile(r"/static/.+\.css$")) as css:
        response = page.goto("/")
    assert response is not None
    assert response.status == 200
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    # Served by WhiteNoise from STATIC_ROOT under its hashed name, as in production.
    stylesheet = css.value
    assert stylesheet.status == 200
    assert re.search(r"\.[0-9a-f]{12}\.css$", stylesheet.url)
    assert "immutable" in stylesheet.headers["cache-control"]
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^fr\b"))
    assert page.evaluate("() => document.styleSheets[0].cssRules.length") > 0
    assert page.evaluate(STYLE_FINGERPRINT, False) != page.evaluate(STYLE_FINGERPRINT, True)


def test_pages_follow_the_requested_language(make_page: PageFactory) -> None:
    page = make_page(locale="en-CA", width=390, height=844)
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", re.compile(r"^en\b"))
    assert page.viewport_size == {"width": 390, "height": 844}


def test_csp_violations_are_caught(page: Page, page_problems: BrowserProblems) -> None:
    page.goto("/")
    # Chromium's own message comes first, then the securitypolicyviolation event's report.
    with page.expect_console_message(lambda m: m.text.startswith("securitypolicyviolation")):
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.injected = true";
                document.body.append(script);
            }"""
        )
    assert page.evaluate("() => window.injected") is None
    assert any("Content Security Policy" in text for text in page_problems.csp_violations)
    assert any("script-src" in text for text in page_problems.csp_violations)
    assert "CSP violations" in page_problems.report()
    page_problems.clear()  # provoked on purpose: do not fail at teardown


def test_only_failed_resources_count_not_4xx_pages(
    page: Page, page_problems: BrowserProblems
) -> None:
    with page.expect_console_message(lambda m: m.text.startswith(FAILED_LOAD)):
        response = page.goto("/no-such-page/")
    assert response is not None
    assert response.status == 404
    assert page_problems.console_errors == []
    with page.expect_console_message(lambda m: m.text.startswith(FAILED_LOAD)):
        page.evaluate("() => fetch('/static/no-such-file.css')")
    assert len(page_problems.console_errors) == 1
    assert "no-such-file.css" in page_problems.report()
    page_problems.clear()  # provoked on purpose: do not fail at teardown


def test_axe_runs_under_the_csp_and_finds_violations(page: Page) -> None:
    page.goto("/")
    assert isinstance(axe_audit(page), list)
    page.evaluate(
        """() => {
            const img = document.createElement("img");
            img.src = "data:image/gif;base64,R0lGODlhAQABAAAAACwAAAAAAQABAAA=";
            document.body.append(img);
        }"""
    )
    ids = {violation["id"] for violation in axe_audit(page)}
    assert "image-alt" in ids


def test_screenshot_is_written(page: Page) -> None:
    page.goto("/")
    path = screenshot(page, "e2e-infrastructure-home")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_mail_reaches_the_smtp_server(smtp_server: Inbox) -> None:
    send_mail(
        "Confirmez votre adresse",
        "Bonjour Marie,\nConfirmez ici : http://localhost:8000/confirmer/abc123.\nMerci",
        "ne-pas-repondre@rdvsante.example",
        ["marie@example.test"],
    )
    message = smtp_server.wait_for("Marie@example.test")
    assert message["Subject"] == "Confirmez votre adresse"
    assert first_link(message) == "http://localhost:8000/confirmer/abc123"
    assert len(smtp_server.messages) == 1
