"""The console's shell (its navigation, the account and sign-out in the header) and the audit log page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.extensions import db
from mailer.models import AuditEntry
from mailer.staff.audit import SHOWN
from mailer.staff.service import find_staff
from tests.conftest import AuthActions, csrf_token

#: Each console page with the section its navigation marks as the current one.
PAGES = {
    "/staff/": "Dashboard",
    "/staff/content/": "Content",
    "/staff/content/news/new": "Content",
    "/staff/digests/next": "Digests",
    "/staff/schedule/": "Schedule",
    "/staff/feeds/": "Feeds",
    "/staff/subscribers/": "Subscribers",
    "/staff/subscribers/?q=ann": "Subscribers",
    "/staff/bounces": "Bounces",
    "/staff/suppressions": "Bounces",
    "/staff/audit": "Audit",
}
SECTIONS = ["Dashboard", "Content", "Digests", "Schedule", "Feeds", "Subscribers", "Bounces", "Audit"]
NAV = re.compile(r'<nav class="console" aria-label="Console">(.*?)</nav>', re.S)
LINK = re.compile(r'<a href="[^"]+"( aria-current="page")?>([^<]+)</a>')
#: One row of the audit table: its cells' text.
ROW = re.compile(r"<tr><td>(.*?)</td></tr>", re.S)


def _nav(html: str) -> tuple[list[str], list[str]]:
    """The console navigation's labels, and those marked as the current page."""
    match = NAV.search(html)
    assert match, "no console navigation on the page"
    links = LINK.findall(match.group(1))
    return [label for _, label in links], [label for current, label in links if current]


@pytest.mark.parametrize(
    ("role", "sections", "pages"),
    [("editor", SECTIONS, PAGES), ("admin", [*SECTIONS, "Team"], {**PAGES, "/staff/team/": "Team"})],
)
def test_every_console_page_has_the_navigation(
    auth: AuthActions, role: str, sections: list[str], pages: dict[str, str]
) -> None:
    """Each section once (Team for admins only), the page's own marked, the account and a sign-out button."""
    client = auth.login(f"{role}@example.org", role)
    for path, current in pages.items():
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.get_data(as_text=True)
        assert _nav(html) == (sections, [current]), path
        assert f"Signed in as {role}@example.org ({role})" in html
        assert re.search(
            r'<form method="post" action="/staff/logout"[^>]*><input type="hidden" name="csrf_token"', html
        )
        assert 'aria-label="Main"' not in html, "the public links are gone once signed in"


def test_the_sign_in_page_keeps_the_public_header(client: FlaskClient) -> None:
    """Signed out, the header has the public links and no console."""
    html = client.get("/staff/login").get_data(as_text=True)
    assert 'aria-label="Main"' in html and "Past digests" in html
    assert 'class="console"' not in html and "Signed in as" not in html


def test_the_dashboard_has_no_big_sign_out_button(auth: AuthActions) -> None:
    """Signing out lives in the header only: one sign-out form on the dashboard."""
    html = auth.login().get("/staff/").get_data(as_text=True)
    assert html.count('action="/staff/logout"') == 1
    assert '<button type="submit" class="link">Sign out</button>' in html


def test_sign_out_is_a_post_that_ends_the_session(auth: AuthActions) -> None:
    """A GET on the sign-out URL does nothing; a POST without the CSRF token neither; the real form signs out."""
    client = auth.login()
    assert client.get("/staff/logout").status_code == 405
    assert client.post("/staff/logout").status_code == 400
    assert client.get("/staff/").status_code == 200
    response = auth.post("/staff/logout")
    assert (response.status_code, response.headers["Location"]) == (302, "/staff/login")
    response = client.get("/staff/audit")
    assert response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient) -> None:
    """The audit log is for signed-in staff only."""
    response = client.get("/staff/audit?actor=x")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


def _entries(app: Flask, *rows: tuple[str, str, datetime]) -> None:
    """Audit entries by (actor, action, occurred_at), in this order of ids."""
    with app.app_context():
        db.session.add_all(AuditEntry(actor=a, action=b, occurred_at=at, target="t") for a, b, at in rows)
        db.session.commit()


def _actions_shown(client: FlaskClient, query: dict[str, str] | None = None) -> list[str]:
    """The action column of the audit page's rows (none for the "no entry" row), top to bottom."""
    response = client.get("/staff/audit?" + urlencode(query or {}))
    assert response.status_code == 200, response.get_data(as_text=True)
    cells = [re.split(r"</td>\s*<td>", row) for row in ROW.findall(response.get_data(as_text=True))]
    return [row[2] for row in cells if len(row) == 6]


def test_the_audit_log_pages_newest_first_by_id(app: Flask, auth: AuthActions) -> None:
    """Editors read it; a page of SHOWN entries, newest first, then the older ones behind a link."""
    client = auth.login()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    _entries(app, *((f"a{i}@example.org", f"act.{i:03d}", start + timedelta(minutes=i)) for i in range(SHOWN + 5)))
    first = _actions_shown(client)
    assert first[0] == f"act.{SHOWN + 4:03d}" and len(first) == SHOWN
    html = client.get("/staff/audit").get_data(as_text=True)
    older = re.search(r'<a href="/staff/audit\?before=(\d+)">Older', html)
    assert older, "no link to older entries"
    rest = _actions_shown(client, {"before": older.group(1)})
    assert rest == [f"act.{i:03d}" for i in range(4, -1, -1)] + ["staff.login", "staff.create"]
    assert "Older" not in client.get(f"/staff/audit?before={older.group(1)}").get_data(as_text=True)


def test_the_audit_log_filters_by_actor_action_and_days(app: Flask, auth: AuthActions) -> None:
    """Actor (part of it, any case), action (from the select) and days in ORG_TIMEZONE, together."""
    client = auth.login()
    app.config["ORG_TIMEZONE"] = "Asia/Singapore"
    _entries(
        app,
        ("ann@example.org", "content.edit", datetime(2026, 3, 1, 15, 59, tzinfo=UTC)),  # 1 March, 23:59 there
        ("ann@example.org", "content.edit", datetime(2026, 3, 1, 16, 0, tzinfo=UTC)),  # 2 March, 00:00 there
        ("bob@example.org", "digest.send", datetime(2026, 3, 2, 12, 0, tzinfo=UTC)),
    )
    html = client.get("/staff/audit").get_data(as_text=True)
    assert "Asia/Singapore" in html
    assert '<option value="content.edit">content.edit</option>' in html
    assert '<option value="digest.send">digest.send</option>' in html
    assert _actions_shown(client, {"actor": "BOB"}) == ["digest.send"]
    assert _actions_shown(client, {"action": "content.edit"}) == ["content.edit", "content.edit"]
    assert _actions_shown(client, {"from": "2026-03-02"}) == [
        "digest.send",
        "content.edit",
        "staff.login",
        "staff.create",
    ]
    assert _actions_shown(client, {"to": "2026-03-01"}) == ["content.edit"]
    assert _actions_shown(client, {"from": "2026-03-02", "to": "2026-03-02", "actor": "ann"}) == ["content.edit"]
    assert _actions_shown(client, {"actor": "%"}) == []


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"from": "yesterday"}, "Not a date"),
        ({"to": "2026-02-30"}, "Not a date"),
        ({"from": "0001-01-01"}, "Not a date"),
        ({"to": "9999-12-31"}, "Not a date"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "comes before"),
        ({"action": "no.such.action"}, "No entry has that action"),
        ({"actor": "a\x00b"}, "printable"),
        ({"actor": "x" * 255}, "printable"),
    ],
)
def test_malformed_filters_are_a_clear_400(app: Flask, auth: AuthActions, query: dict[str, str], problem: str) -> None:
    """The page says which filter it could not use, and still shows the entries the others allow."""
    client = auth.login()
    app.config["ORG_TIMEZONE"] = "Asia/Singapore"
    response = client.get("/staff/audit?" + urlencode(query))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert problem in html and 'aria-invalid="true"' in html
    assert "staff.login" in html


def test_unreadable_cursors_show_the_first_page(auth: AuthActions) -> None:
    """A cursor that is not a row id is the first page, not an error."""
    client = auth.login()
    for before in ("abc", "-1", "0", "99999999999999999999", "1e3"):
        assert "staff.login" in client.get(f"/staff/audit?before={before}").get_data(as_text=True), before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["actor", "action", "from", "to", "before"]), st.text(max_size=40)))
def test_no_audit_filter_makes_a_500(app: Flask, client: FlaskClient, query: dict[str, str]) -> None:
    """Any value in any filter: a page or a 400, never a server error."""
    with app.app_context():
        known = find_staff("editor@example.org") is not None
    if client.get("/staff/audit").status_code != 200:
        AuthActions(app, client).login(role=None if known else "editor")
    response = client.get("/staff/audit?" + urlencode(query))
    assert response.status_code in (200, 400), (query, response.status_code)
    assert csrf_token(response.get_data(as_text=True))
