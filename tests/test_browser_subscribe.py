"""A person subscribes with a real browser (Debian's chromium through Playwright) against a real server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from mailbox import Maildir
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from mailer.dev.smtp import caught_mail_path
from mailer.models import Topic
from tests.conftest import CaughtMail, free_port
from tests.subscribing import link_in, subscriber

CHROMIUM = "/usr/bin/chromium"
#: Chromium's console words for a resource our headers blocked (the CSP, or X-Frame-Options on a frame).
BLOCKED = ("Content Security Policy", "X-Frame-Options")
#: Reports each CSP violation to the console too, with what was blocked (CDP-injected: the CSP does not stop it).
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`Content Security Policy violation: ${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""

pytestmark = [
    pytest.mark.browser,
    # One database is enough to drive the form; both are covered by the other subscription tests.
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app served by werkzeug on a free port in a thread; yields its base URL."""
    port = free_port()
    httpd = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()
    thread.join(10)


def test_subscribe_with_a_browser(app: Flask, server: str, mailbox: CaughtMail, celery_worker: object) -> None:
    """Fill in the form with the keyboard, see the error tied to the field, correct it, get the answer.

    Then open the confirmation link and the caught email in its frame; no page may break our own CSP.
    """
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip("chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.add_init_script(REPORT_VIOLATIONS)
            page.goto(f"{server}/")
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Subscribe").click()
            email = page.get_by_label("Email address")
            email.fill("ann@localhost")
            page.get_by_label("Name (optional)").fill("Ann Browser")
            page.get_by_label("Projects").uncheck()
            page.get_by_role("button", name="Subscribe").press("Enter")

            email = page.get_by_label("Email address")
            assert email.get_attribute("aria-invalid") == "true"
            error_id = email.get_attribute("aria-describedby").split()[-1]
            assert "not a valid email address" in page.locator(f"#{error_id}").inner_text()
            assert not page.get_by_label("Projects").is_checked()

            email.fill("ann.browser@example.org")
            email.press("Enter")
            page.get_by_role("heading", name="Check your inbox").wait_for()

            (message,) = mailbox.wait_for(1)
            page.goto(server + link_in(message, "confirm"))
            page.get_by_role("button", name="Confirm").wait_for()
            key = Maildir(str(caught_mail_path(app.instance_path))).add(mailbox.raw[0])
            page.goto(f"{server}/dev/mail/{key}")
            assert "Confirm" in page.frame_locator("iframe.mail").locator("body").inner_text()
            page.goto(f"{server}/no/such/page")
        finally:
            browser.close()

    row = subscriber(app, "ann.browser@example.org")
    assert (row.status, row.name, Topic(row.topics).to_names()) == ("pending", "Ann Browser", ["meetings", "news"])
    assert [text for text in console if _is_blocked(text)] == []
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "ann.browser@example.org"


def _is_blocked(text: str) -> bool:
    """True when a console message says our headers blocked something."""
    return any(words in text for words in BLOCKED)
