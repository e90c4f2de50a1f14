"""The console's content pages: add and edit items with the importer's rules; bad input changes nothing."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import AuditEntry, Meeting, NewsItem
from tests.conftest import AuthActions

MEETING = {"slug": "smewg-59", "title": "59th SMEWG Meeting", "kind": "working-group", "number": "59",
           "start_date": "2025-02-24", "end_date": "2025-02-25", "city": "Incheon", "economy": "Korea",
           "status": "upcoming", "summary": "First meeting of 2025.", "link": "https://www.apec.org/"}  # fmt: skip


@pytest.fixture
def staff(auth: AuthActions) -> FlaskClient:
    """A signed-in editor."""
    return auth.login()


def _meetings(app: Flask) -> list[tuple[str, str, int | None]]:
    """Every meeting as (slug, title, number)."""
    with app.app_context():
        return [(m.slug, m.title, m.number) for m in db.session.execute(db.select(Meeting)).scalars()]


def test_pages_need_sign_in(client: FlaskClient) -> None:
    """Anonymous visitors are sent to sign in."""
    for path in ("/staff/content/", "/staff/content/meetings/new", "/staff/content/meetings/x"):
        assert client.get(path).status_code == 302


def test_add_then_edit_a_meeting(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """A new meeting is saved and listed; an edit updates it (slug kept) and both are audited."""
    response = auth.post("/staff/content/meetings/new", MEETING)
    assert response.status_code == 303
    assert "59th SMEWG Meeting" in staff.get("/staff/content/").get_data(as_text=True)
    form = staff.get("/staff/content/meetings/smewg-59").get_data(as_text=True)
    assert 'value="Incheon"' in form
    assert 'value="2025-02-24"' in form
    edited = auth.post("/staff/content/meetings/smewg-59", {**MEETING, "slug": "hijack", "title": "59th SMEWG"})
    assert edited.status_code == 303
    assert _meetings(app) == [("smewg-59", "59th SMEWG", 59)]
    with app.app_context():
        actions = db.session.execute(db.select(AuditEntry.action, AuditEntry.actor)).all()
    assert actions.count(("content.edit", "editor@example.org")) == 2


def test_add_news_shows_in_the_next_digest(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """A news item added in the console is in the next digest's preview."""
    data = {"slug": "new-projects", "title": "Four new projects", "published_on": "2025-01-10", "body": "Endorsed."}
    assert auth.post("/staff/content/news/new", data).status_code == 303
    assert "Four new projects" in staff.get("/staff/digests/next").get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(NewsItem.body)).scalar() == "Endorsed."


#: Bad values for a new meeting, with the field the form marks and what it says.
BAD_MEETINGS = [
    ({"start_date": "24/02/2025"}, "start_date", "Start date must be YYYY-MM-DD"),
    ({"start_date": "2025-02-30"}, "start_date", "Start date is not a real date"),
    ({"start_date": ""}, "start_date", "Enter the start date"),
    ({"end_date": "2025-02-01"}, "end_date", "End date must be on or after the start date"),
    ({"kind": "party"}, "kind", "Kind must be one of"),
    ({"status": ""}, "status", "Choose the status"),
    ({"number": "fifty"}, "number", "Number must be a whole number"),
    ({"number": "0"}, "number", "Number must be between 1 and 100000"),
    ({"title": "x" * 301}, "title", "Title is longer than 300 characters"),
    ({"title": ""}, "title", "Enter the title"),
    ({"title": "Meeting\r\nBcc: x@example.org"}, "title", "Title must be a single line"),
    ({"slug": "Not A Slug"}, "slug", "Slug must be lowercase letters"),
    ({"link": "javascript:alert(1)"}, "link", "Link must be an http:// or https:// URL"),
    ({"summary": "x" * 20_001}, "summary", "Summary is longer than 20000 characters"),
]


def test_bad_input_is_a_form_error_and_saves_nothing(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """Malformed, injected and oversized values answer 400 with the field's problem; nothing is saved."""
    for changes, field, message in BAD_MEETINGS:
        response = auth.post("/staff/content/meetings/new", {**MEETING, **changes})
        assert response.status_code == 400, changes
        page = response.get_data(as_text=True)
        assert f'id="{field}-error"' in page, changes
        assert message in page, changes
        assert "_date" not in page.split("<form")[0], ("the error summary names fields by their labels", changes)
        assert "missing " not in page, changes
        assert _meetings(app) == [], changes


def test_new_item_cannot_take_an_existing_slug(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """Adding with a slug in use is refused rather than overwriting the other item."""
    auth.post("/staff/content/meetings/new", MEETING)
    response = auth.post("/staff/content/meetings/new", {**MEETING, "title": "Another"})
    assert response.status_code == 400
    assert "is already used" in response.get_data(as_text=True)
    assert _meetings(app) == [("smewg-59", "59th SMEWG Meeting", 59)]


def test_unknown_section_or_item_is_404(staff: FlaskClient, auth: AuthActions) -> None:
    """Made-up sections and slugs answer 404, on GET and POST."""
    for path in ("/staff/content/parties/new", "/staff/content/meetings/nope", "/staff/content/x/" + "y" * 5000):
        assert staff.get(path).status_code == 404
    assert auth.post("/staff/content/parties/new", MEETING).status_code == 404


def test_post_without_csrf_token_is_refused(app: Flask, staff: FlaskClient) -> None:
    """A forged post: 400 and nothing saved."""
    assert staff.post("/staff/content/meetings/new", data=MEETING).status_code == 400
    assert _meetings(app) == []


def test_slug_with_control_characters_is_404(staff: FlaskClient) -> None:
    """A path that cannot be a slug answers 404 before any query."""
    for slug in ("smewg-59%00", "%00", "Smewg"):
        assert staff.get(f"/staff/content/meetings/{slug}").status_code == 404
