"""Every console page in a real browser (Debian's chromium through Playwright), wide and phone-narrow.

At 1280 and 390 px: the page never scrolls sideways, the console navigation shows, nothing reaches the
console as an error (CSP violations are reported there). axe-core, installed from npm into a cache
folder on first use, finds no accessibility violation on any page.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from flask import Flask

from mailer.content.importer import import_text
from mailer.digests.cadence import set_schedule
from mailer.extensions import db
from mailer.models import Digest, Feed, Subscriber, utcnow
from mailer.staff.service import create_staff
from tests import test_browser_subscribe
from tests.conftest import STAFF_PASSWORD
from tests.data import digest_content
from tests.test_browser_subscribe import CHROMIUM, REPORT_VIOLATIONS

#: Where the test installs axe-core from npm, once (tests/.cache is ignored by git).
AXE_FOLDER = Path(__file__).parent / ".cache" / "axe"
AXE_SCRIPT = AXE_FOLDER / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)
#: The first elements that stick out of the window on the right (not counting those in a scrolling wrapper).
OVERFLOWING = """() => [...document.querySelectorAll("body *")]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth && !e.parentElement.closest(".table-scroll"))
  .slice(0, 3).map((e) => e.outerHTML.slice(0, 80))"""
ADMIN = "a.rather.long.address.for.the.header@example.org"

#: The app served in a thread: the subscribe test's fixture, shared.
server = test_browser_subscribe.server
pytestmark = [pytest.mark.browser, pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]


def _needed(tool: str, found: bool) -> None:
    """Skip when ``tool`` is missing, except on CI, where a missing tool fails the test."""
    if found:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} is missing on CI")
    pytest.skip(f"{tool} is not installed")


@pytest.fixture(scope="session")
def axe_script() -> Path:
    """axe-core's browser script, installed from npm into tests/.cache/axe the first time."""
    if not AXE_SCRIPT.exists():
        npm = shutil.which("npm")
        _needed("npm", npm is not None)
        subprocess.run(
            [npm, "install", "--prefix", str(AXE_FOLDER), "--no-audit", "--no-fund", "--silent", "axe-core@4"],
            check=True,
            timeout=300,
        )
    return AXE_SCRIPT


def _console_pages(app: Flask) -> list[str]:
    """Content, a sent digest and a subscriber to show; every console page's path, an admin's view."""
    with app.app_context():
        create_staff(ADMIN, STAFF_PASSWORD, role="admin")
        import_text(json.dumps(digest_content()), actor=ADMIN)
        digest = Digest(subject="SMEWG news", status="sent", until=utcnow(), content={}, topics=7, sent_at=utcnow())
        subscriber = Subscriber(email="ann.reader@example.org", status="confirmed")
        # A failing feed, so the feeds page shows its failure in words.
        feed = Feed(url="https://example.org/news.rss", kind="news", failures=2, last_error="timed out after 20 s")
        db.session.add_all([digest, subscriber, feed])
        db.session.commit()
        set_schedule("weekly mon 09:00", 24 * 60, {"meetings": 1, "projects": 1, "news": 2}, ADMIN)
        ids = digest.id, subscriber.id, feed.id
    return [
        "/staff/", "/staff/content/", "/staff/content/news/new", "/staff/content/news/nine-projects",
        "/staff/content/news/nine-projects/delete", "/staff/digests/next", "/staff/digests/send",
        f"/staff/digests/{ids[0]}", "/staff/subscribers/?q=example",
        f"/staff/subscribers/{ids[1]}", "/staff/bounces", "/staff/suppressions", "/staff/audit", "/staff/team/",
        "/staff/schedule/", "/staff/feeds/", f"/staff/feeds/{ids[2]}/remove",
    ]  # fmt: skip


def _sign_in(page: object, server: str) -> None:
    """Sign the admin in through the real form."""
    page.goto(f"{server}/staff/login")
    page.get_by_label("Email").fill(ADMIN)
    page.get_by_label("Password").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Console").wait_for()


def test_every_console_page_fits_and_passes_axe(app: Flask, server: str, axe_script: Path) -> None:
    """At each width: no sideways scroll, the navigation visible, no console error; then no axe violation."""
    _needed("chromium", Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    pages = _console_pages(app)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            for width in WIDTHS:
                problems += _layout_problems(browser, server, pages, width)
                problems += _axe_problems(browser, server, pages, width, axe_script)
        finally:
            browser.close()
    assert problems == [], "\n".join(problems)


def _layout_problems(browser: object, server: str, pages: list[str], width: int) -> list[str]:
    """Under our own CSP: what overflows sideways, lacks the navigation or logs an error, page by page."""
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.text} {m.location['url']}") if _is_error(m) else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.add_init_script(REPORT_VIOLATIONS)
    _sign_in(page, server)
    problems = []
    for path in pages:
        response = page.goto(server + path)
        if response is None or response.status != 200:
            problems.append(f"{width}px {path}: status {response and response.status}")
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            problems.append(f"{width}px {path}: {scroll}px wide in a {inner}px window: {page.evaluate(OVERFLOWING)}")
        if not page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit").is_visible():
            problems.append(f"{width}px {path}: the console navigation is not visible")
        problems += [f"{width}px {path}: console error {text}" for text in errors]
        errors.clear()
    context.close()
    return problems


def _is_error(message: object) -> bool:
    """An error on the console, other than the 404 of the favicon that Chromium asks every site for by itself."""
    return message.type == "error" and not message.location["url"].endswith("/favicon.ico")


def _axe_problems(browser: object, server: str, pages: list[str], width: int, axe_script: Path) -> list[str]:
    """axe-core's violations, page by page.

    Our CSP (script-src 'self') blocks the inline script Playwright's ``add_script_tag`` injects, so this
    context alone bypasses the CSP; the layout run above keeps it.
    """
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    page = context.new_page()
    _sign_in(page, server)
    problems = []
    for path in pages:
        page.goto(server + path)
        page.add_script_tag(path=str(axe_script))
        for violation in page.evaluate("async () => (await axe.run()).violations"):
            targets = [" ".join(node["target"]) for node in violation["nodes"]][:3]
            problems.append(f"{width}px {path}: axe {violation['id']} ({violation['impact']}) at {targets}")
    context.close()
    return problems
