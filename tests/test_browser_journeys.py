"""A communications team's console journeys in a real browser (Debian's chromium through Playwright).

At 1280 px: sign in, add a meeting with no slug, preview the next digest, send it now and follow its
progress to "sent" (a real Celery worker delivers it). At 390 px, a phone: filter the subscribers, check a
CSV without importing it, change the password and sign in again with it, then find it all in the audit log.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from flask import Flask

from mailer.extensions import db
from mailer.models import ALL_TOPICS, Subscriber
from mailer.staff.service import create_staff
from tests import test_browser_subscribe
from tests.conftest import STAFF_PASSWORD, CaughtMail
from tests.test_browser_console import _needed
from tests.test_browser_subscribe import CHROMIUM

EDITOR = "comms.lead@example.org"
NEW_PASSWORD = "a brand new passphrase"
MEETING = "Digital Trade Workshop: Lima 2027"
#: Two known addresses (one already here), one with consent evidence, one without.
CSV = (
    "email,name,consent_at\n"
    "new.reader@example.org,New Reader,2026-01-05T10:00:00+00:00\n"
    "maybe.reader@example.org,Maybe Reader,\n"
    "ana@example.org,Ana,\n"
)

#: The app served in a thread: the subscribe test's fixture, shared.
server = test_browser_subscribe.server
pytestmark = [pytest.mark.browser, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def _people(app: Flask) -> None:
    """An editor, two confirmed subscribers of every topic and one pending."""
    with app.app_context():
        create_staff(EDITOR, STAFF_PASSWORD, role="editor")
        db.session.add_all(
            [Subscriber(email=f"{n}@example.org", topics=ALL_TOPICS, status="confirmed") for n in ("ana", "ben")]
            + [Subscriber(email="carl@example.org", topics=ALL_TOPICS, status="pending")]
        )
        db.session.commit()


def _sign_in(page: object, server: str, password: str) -> None:
    """Sign the editor in through the real form and wait for the console."""
    page.goto(f"{server}/staff/login")
    page.get_by_label("Email").fill(EDITOR)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Console").wait_for()


def _console(page: object) -> object:
    """The console's navigation."""
    return page.get_by_role("navigation", name="Console")


def test_communications_team_journeys(app: Flask, server: str, mailbox: CaughtMail, celery_worker: object) -> None:
    """Content to a sent digest on a wide screen; subscribers, import, password and audit on a phone."""
    _needed("chromium", Path(CHROMIUM).exists())
    from playwright.sync_api import expect, sync_playwright

    _people(app)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            wide = browser.new_context(viewport={"width": 1280, "height": 900})
            _send_a_digest(wide.new_page(), server, expect)
            wide.close()
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            _look_after_subscribers_and_account(phone.new_page(), server, expect)
            phone.close()
        finally:
            browser.close()
    assert sorted(address for _, recipients in mailbox.envelopes for address in recipients) == [
        "ana@example.org",
        "ben@example.org",
    ]


def _send_a_digest(page: object, server: str, expect: object) -> None:
    """Sign in, add a meeting, preview, send now, confirm, follow the digest to "sent"."""
    _sign_in(page, server, STAFF_PASSWORD)
    _console(page).get_by_role("link", name="Content").click()
    page.get_by_role("link", name="Add to meetings").click()
    expect(page.get_by_role("heading", name="New meeting")).to_be_visible()
    expect(page.get_by_label("Slug (optional)")).to_have_value("")
    page.get_by_label("Title", exact=True).fill(MEETING)
    page.get_by_label("Kind", exact=True).select_option("workshop")
    page.get_by_label("Start date", exact=True).fill("2027-03-10")
    page.get_by_label("City (optional)").fill("Lima")
    page.get_by_label("Status", exact=True).select_option("upcoming")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_role("heading", name="Content", exact=True)).to_be_visible()
    expect(page.get_by_text("it will be in the next digest")).to_be_visible()
    row = page.get_by_role("region", name="Meetings").get_by_role("row").filter(has_text=MEETING)
    expect(row.get_by_role("cell").nth(1)).to_have_text("digital-trade-workshop-lima-2027")

    page.get_by_role("link", name="Preview it").click()
    expect(page.get_by_role("heading", name="Next digest")).to_be_visible()
    expect(page.locator("pre")).to_contain_text(MEETING)
    expect(page.frame_locator("iframe.mail").locator("body")).to_contain_text(MEETING)
    page.get_by_role("button", name="Send now to 2 subscribers…").click()

    expect(page.get_by_role("heading", name="Send the next digest now?")).to_be_visible()
    expect(page.locator("tfoot")).to_have_text("Total2")
    page.get_by_role("button", name="Yes, send to 2 subscribers").click()

    expect(page.get_by_role("heading", name="Digest 1")).to_be_visible()
    expect(page.get_by_text("Digest 1 created")).to_be_visible()
    deadline = time.monotonic() + 15
    while "Status: sent" not in page.locator("main").inner_text() and time.monotonic() < deadline:
        time.sleep(0.2)
        page.reload()
    expect(page.get_by_text("Status: sent")).to_be_visible()
    expect(page.get_by_text("2 of 2 done")).to_be_visible()
    expect(page.locator("progress")).to_have_attribute("value", "2")
    expect(page.get_by_role("region", name="Deliveries by status").get_by_role("cell").nth(2)).to_have_text("2")


def _look_after_subscribers_and_account(page: object, server: str, expect: object) -> None:
    """On a phone: filter subscribers, check a CSV, change the password, sign in again, read the audit log."""
    _sign_in(page, server, STAFF_PASSWORD)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _console(page).get_by_role("link", name="Subscribers").click()
    table = page.get_by_role("region", name="Subscribers")
    expect(table.get_by_role("link")).to_have_count(3)
    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"[?&]status=pending(&|$)"))
    expect(table.get_by_role("link")).to_have_text(["carl@example.org"])
    page.get_by_label("Status").select_option("confirmed")
    page.get_by_role("button", name="Show").click()
    expect(table.get_by_role("link")).to_have_text(["ben@example.org", "ana@example.org"])

    page.get_by_role("link", name="Import a CSV").click()
    expect(page.get_by_role("heading", name="Import subscribers from a CSV")).to_be_visible()
    page.get_by_label("CSV file").set_input_files(
        {"name": "readers.csv", "mimeType": "text/csv", "buffer": CSV.encode()}
    )
    page.get_by_role("button", name="Check the file (nothing changes yet)").click()
    expect(page.get_by_role("heading", name="What importing readers.csv would do now")).to_be_visible()
    report = page.get_by_role("list").filter(has_text="new confirmed")
    expect(report.get_by_role("listitem")).to_have_text(
        [
            "1 new confirmed (with consent evidence)",
            "1 new pending (no email is sent)",
            "0 new unsubscribed or suppressed",
            "1 already known, left exactly as they are",
            "0 erased on their owner's request, skipped",
        ]
    )
    expect(page.get_by_role("button", name="Import these 2 rows")).to_be_visible()
    _console(page).get_by_role("link", name="Subscribers").click()
    expect(table.get_by_role("link")).to_have_count(3)  # nothing imported

    page.get_by_role("link", name="Your account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("Current password").fill(STAFF_PASSWORD)
    page.get_by_label("New password (12 characters or more)").fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("navigation", name="Console")).to_have_count(0)

    page.goto(f"{server}/staff/login")
    page.get_by_label("Email").fill(EDITOR)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Staff sign-in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Console")).to_have_count(0)
    _sign_in(page, server, NEW_PASSWORD)

    _console(page).get_by_role("link", name="Audit").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    entries = page.get_by_role("region", name="Audit entries")
    for action, target in (
        ("content.edit", "meetings:digital-trade-workshop-lima-2027"),
        ("digest.create", "digest:"),
        ("staff.password_change", EDITOR),
        ("staff.logout", EDITOR),
        ("staff.login", EDITOR),
    ):
        expect(entries.get_by_role("row").filter(has_text=action).filter(has_text=target).first).to_be_visible()
    expect(entries.get_by_role("row").filter(has_text="subscribers.import")).to_have_count(0)
    page.get_by_label("Action").select_option("staff.password_change")
    page.get_by_role("button", name="Show").click()
    expect(entries.get_by_role("row")).to_have_count(2)  # the header and the one change
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
