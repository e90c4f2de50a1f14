"""Managing content: archive, unarchive and delete from the console, slugs made from titles, item pages."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.content import importer
from mailer.content.importer import import_text
from mailer.content.schema import slug_from_title
from mailer.content.service import archive_item, delete_item, unarchive_item
from mailer.digests.compose import compose_next, preview
from mailer.extensions import db
from mailer.main.cache import public_version
from mailer.models import ALL_TOPICS, SLUG_LENGTH, AuditEntry, Digest, Meeting, NewsItem
from tests.conftest import AuthActions
from tests.data import meeting, news_item

PROJECT = {"slug": "toolkit", "title": "Digital <b>trade</b> toolkit", "status": "implementing", "year": 2023}
ACTIONS = ("content.archive", "content.unarchive", "content.delete")
OTHER = meeting(slug="smewg-57", title="57th SMEWG Meeting", number=57, start_date="2023-08-14", end_date="2023-08-15")


@pytest.fixture
def content(app: Flask) -> None:
    """Two meetings, a project and a news item."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(), OTHER], "projects": [PROJECT], "news": [news_item()]}))


@pytest.fixture
def staff(auth: AuthActions) -> FlaskClient:
    """A signed-in editor."""
    return auth.login()


def _archived_at(app: Flask, slug: str = "smewg-58") -> datetime | None:
    """The meeting's ``archived_at``."""
    with app.app_context():
        return db.session.execute(db.select(Meeting.archived_at).where(Meeting.slug == slug)).scalar_one()


def _audit(app: Flask) -> list[tuple[str, str, str | None]]:
    """Every audit entry about archiving, unarchiving and deleting, as (actor, action, target)."""
    with app.app_context():
        query = db.select(AuditEntry.actor, AuditEntry.action, AuditEntry.target).order_by(AuditEntry.id)
        return [tuple(row) for row in db.session.execute(query) if row.action in ACTIONS]


@pytest.mark.usefixtures("content")
def test_archive_needs_the_confirmation_step_and_csrf(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """The GET asks; a POST without CSRF token or without the confirmation answers 400 and changes nothing."""
    page = staff.get("/staff/content/meetings/smewg-58/archive")
    assert page.status_code == 200
    assert "Archive this meeting?" in page.get_data(as_text=True)
    assert staff.post("/staff/content/meetings/smewg-58/archive", data={"confirm": "archive"}).status_code == 400
    assert auth.post("/staff/content/meetings/smewg-58/archive").status_code == 400
    assert auth.post("/staff/content/meetings/smewg-58/archive", {"confirm": "delete"}).status_code == 400
    assert _archived_at(app) is None
    assert _audit(app) == []
    done = auth.post("/staff/content/meetings/smewg-58/archive", {"confirm": "archive"})
    assert done.status_code == 303
    assert _archived_at(app) is not None
    assert _audit(app) == [("editor@example.org", "content.archive", "meetings:smewg-58")]
    again = auth.post("/staff/content/meetings/smewg-58/archive", {"confirm": "archive"})
    assert again.status_code == 303
    assert "was already archived" in staff.get("/staff/content/").get_data(as_text=True)
    assert len(_audit(app)) == 1
    listing = staff.get("/staff/content/").get_data(as_text=True)
    assert "/staff/content/meetings/smewg-58/unarchive" in listing
    assert auth.post("/staff/content/meetings/smewg-58/unarchive", {"confirm": "unarchive"}).status_code == 303
    assert _archived_at(app) is None
    assert _audit(app)[-1] == ("editor@example.org", "content.unarchive", "meetings:smewg-58")


@pytest.mark.usefixtures("content")
def test_an_archived_item_can_still_be_edited_and_stays_archived(
    app: Flask, staff: FlaskClient, auth: AuthActions
) -> None:
    """The edit form says the item is archived and offers to publish it again; saving keeps it archived."""
    live = staff.get("/staff/content/meetings/smewg-58").get_data(as_text=True)
    assert "/staff/content/meetings/smewg-58/archive" in live
    assert "/staff/content/meetings/smewg-58/delete" in live
    with app.app_context():
        archive_item("meetings", "smewg-58", actor="tester")
    form = staff.get("/staff/content/meetings/smewg-58").get_data(as_text=True)
    assert "This meeting is archived" in form
    assert "/staff/content/meetings/smewg-58/unarchive" in form
    edited = {key: str(value) for key, value in meeting(city="Arequipa").items()}
    assert auth.post("/staff/content/meetings/smewg-58", edited).status_code == 303
    assert "it stays archived" in staff.get("/staff/content/").get_data(as_text=True)
    assert _archived_at(app) is not None


@pytest.mark.usefixtures("content")
def test_archived_item_leaves_the_public_pages_at_once_and_comes_back(app: Flask, client: FlaskClient) -> None:
    """Archiving moves the public version: the cached home page drops the item, its page and .ics answer 410."""
    assert "58th SMEWG Meeting" in client.get("/").get_data(as_text=True)
    assert client.get("/meetings/smewg-58").status_code == 200
    with app.app_context():
        before = public_version()
        assert archive_item("meetings", "smewg-58", actor="tester")
        assert public_version() != before
    home = client.get("/").get_data(as_text=True)
    assert "58th SMEWG Meeting" not in home
    assert "57th SMEWG Meeting" in home
    gone = client.get("/meetings/smewg-58")
    assert gone.status_code == 410
    assert "archived" in gone.get_data(as_text=True)
    assert client.get("/meetings/smewg-58.ics").status_code == 410
    with app.app_context():
        archived = public_version()
        assert not archive_item("meetings", "smewg-58", actor="tester")
        assert unarchive_item("meetings", "smewg-58", actor="tester")
        assert public_version() not in (archived, None)
    assert "58th SMEWG Meeting" in client.get("/").get_data(as_text=True)
    assert client.get("/meetings/smewg-58").status_code == 200


@pytest.mark.usefixtures("content")
def test_archived_item_is_never_put_in_a_new_digest(app: Flask) -> None:
    """The next digest leaves an archived item out, even one changed since the last digest."""
    with app.app_context():
        archive_item("meetings", "smewg-58", actor="tester")
        archive_item("news", "nine-projects", actor="tester")
        next_digest = compose_next()
        assert [item["slug"] for item in next_digest.content["meetings"]] == ["smewg-57"]
        assert "news" not in next_digest.content
        _, rendered = preview(ALL_TOPICS)
    assert "58th SMEWG Meeting" not in rendered.text
    assert "Nine projects under way" not in rendered.html


@pytest.mark.usefixtures("content")
def test_delete_asks_first_then_removes_the_row_and_a_replay_is_404(
    app: Flask, client: FlaskClient, staff: FlaskClient, auth: AuthActions
) -> None:
    """Delete: confirmation and CSRF required; the row goes, an audit entry keeps its fields; a replay is a 404."""
    with app.app_context():
        snapshot = {"meetings": [{**meeting(), "summary": None, "link": None, "demo": False}]}
        now = datetime.now(UTC)
        sent = Digest(subject="Sent", status="sent", until=now, sent_at=now, content=snapshot, topics=ALL_TOPICS)
        db.session.add(sent)
        db.session.commit()
        sent_id = sent.id
    assert "58th SMEWG Meeting" in client.get("/").get_data(as_text=True)
    confirm = staff.get("/staff/content/meetings/smewg-58/delete").get_data(as_text=True)
    assert "Delete this meeting for good?" in confirm
    assert staff.post("/staff/content/meetings/smewg-58/delete", data={"confirm": "delete"}).status_code == 400
    assert auth.post("/staff/content/meetings/smewg-58/delete", {"confirm": "archive"}).status_code == 400
    assert _audit(app) == []
    assert auth.post("/staff/content/meetings/smewg-58/delete", {"confirm": "delete"}).status_code == 303
    assert auth.post("/staff/content/meetings/smewg-58/delete", {"confirm": "delete"}).status_code == 404
    assert staff.get("/staff/content/meetings/smewg-58/delete").status_code == 404
    with app.app_context():
        assert db.session.execute(db.select(Meeting.slug)).scalars().all() == ["smewg-57"]
        assert db.session.get(Digest, sent_id).content == snapshot
        entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "content.delete")).scalar_one()
        assert (entry.actor, entry.target) == ("editor@example.org", "meetings:smewg-58")
        assert entry.detail["item"]["title"] == "58th SMEWG Meeting"
        assert not delete_item("meetings", "smewg-58", actor="tester")
    assert "58th SMEWG Meeting" not in client.get("/").get_data(as_text=True)
    assert client.get("/meetings/smewg-58").status_code == 404
    assert len(_audit(app)) == 1


@pytest.mark.usefixtures("content")
def test_actions_on_unknown_items_sections_and_actions_are_404(client: FlaskClient, auth: AuthActions) -> None:
    """Made-up items, sections and actions answer 404; anonymous visitors are sent to sign in."""
    assert client.get("/staff/content/meetings/smewg-58/archive").status_code == 302
    auth.login()
    paths = ("meetings/nope/archive", "parties/smewg-58/delete", "meetings/smewg-58/destroy", "meetings/%00/delete")
    for path in paths:
        assert auth.client.get(f"/staff/content/{path}").status_code == 404, path
        assert auth.post(f"/staff/content/{path}", {"confirm": "delete"}).status_code == 404, path


def test_slug_from_title_folds_accents_and_keeps_to_the_length() -> None:
    """Lower-case ASCII words joined by hyphens; a long title is cut at a word, within SLUG_LENGTH."""
    assert slug_from_title("Réunion à Séoul: 59e SMEWG — Ça va?") == "reunion-a-seoul-59e-smewg-ca-va"
    assert slug_from_title("Straße & Œuvre, Łódź") == "strasse-oeuvre-lodz"
    assert slug_from_title("日本 ★") == ""
    long = slug_from_title("Workshop on digital trade " * 20)
    assert len(long) <= SLUG_LENGTH
    assert ("workshop-on-digital-trade-" * 20).startswith(long + "-"), "cut where a word ends"
    assert slug_from_title("x" * 500) == "x" * SLUG_LENGTH


def test_new_item_without_slug_gets_one_from_its_title(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """An empty slug is made from the title, made unique with -2, -3; a slug typed in is kept."""
    form = staff.get("/staff/content/news/new").get_data(as_text=True)
    assert "Leave empty to make one from the title" in form
    item = {"slug": "", "title": "Réunion à Séoul", "published_on": "2025-01-10", "body": "Text."}
    for _ in range(3):
        assert auth.post("/staff/content/news/new", item).status_code == 303
    long = {**item, "title": "Ä" + "b" * 299}
    for _ in range(2):
        assert auth.post("/staff/content/news/new", long).status_code == 303
    assert auth.post("/staff/content/news/new", {**item, "title": "日本"}).status_code == 303
    assert auth.post("/staff/content/news/new", {**item, "slug": "my-own"}).status_code == 303
    with app.app_context():
        slugs = set(db.session.execute(db.select(NewsItem.slug)).scalars())
    assert slugs == {
        "reunion-a-seoul",
        "reunion-a-seoul-2",
        "reunion-a-seoul-3",
        "a" + "b" * (SLUG_LENGTH - 1),
        "a" + "b" * (SLUG_LENGTH - 3) + "-2",
        "news",
        "my-own",
    }
    refused = auth.post("/staff/content/news/new", {**item, "title": ""})
    assert refused.status_code == 400
    assert "Enter the title" in refused.get_data(as_text=True)


def test_a_slug_taken_meanwhile_is_a_form_error(
    app: Flask, staff: FlaskClient, auth: AuthActions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests racing for one slug: the second gets the form back (the unique constraint decides), not a 500."""
    item = {"slug": "same", "title": "First", "published_on": "2025-01-10", "body": "Text."}
    assert auth.post("/staff/content/news/new", item).status_code == 303
    monkeypatch.setattr(importer, "_slug_taken", lambda model, slug: False)  # as if checked before the first commit
    response = auth.post("/staff/content/news/new", {**item, "title": "Second"})
    assert response.status_code == 400
    assert "This slug is already used" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(NewsItem.title)).scalars().all() == ["First"]


@pytest.mark.usefixtures("content")
def test_item_pages_show_each_item_escaped(client: FlaskClient) -> None:
    """Each kind of item has a page with its details, a Subscribe link and (meetings) the .ics link."""
    page = client.get("/meetings/smewg-58")
    assert page.status_code == 200
    assert page.headers["ETag"]
    text = page.get_data(as_text=True)
    assert "58th SMEWG Meeting" in text
    assert "4–5 March 2024" in text
    assert "Lima, Peru" in text
    assert 'href="/meetings/smewg-58.ics"' in text
    assert 'href="/subscribe"' in text
    project = client.get("/projects/toolkit").get_data(as_text=True)
    assert "Digital &lt;b&gt;trade&lt;/b&gt; toolkit" in project
    assert "<b>trade</b>" not in project
    news = client.get("/news/nine-projects").get_data(as_text=True)
    assert "15 December 2023" in news
    assert "The SMEWG is implementing nine APEC-funded projects." in news
    assert client.get("/meetings/smewg-58.ics").mimetype == "text/calendar"


@pytest.mark.usefixtures("content")
def test_unknown_and_malformed_slugs_are_404(client: FlaskClient) -> None:
    """Unknown, malformed, very long and NUL-carrying slugs answer 404; an item of another kind is not found."""
    bad = ("nope", "..%2Fx", "../x", "a" * 5000, "%00", "smewg-58%00", "Smewg-58", "x%27%20OR%201=1--", "smewg-58.html")
    for path in [f"/{section}/{slug}" for section in ("meetings", "projects", "news") for slug in bad]:
        assert client.get(path).status_code == 404, path
    assert client.get("/news/smewg-58").status_code == 404
    assert client.get("/projects/nine-projects").status_code == 404


@pytest.mark.usefixtures("content")
def test_home_page_and_digest_link_every_item_page(app: Flask, client: FlaskClient) -> None:
    """The home page and both parts of the digest link each item's public page."""
    home = client.get("/").get_data(as_text=True)
    for path in ("/meetings/smewg-58", "/meetings/smewg-57", "/projects/toolkit", "/news/nine-projects"):
        assert f'href="{path}"' in home, path
        assert client.get(path).status_code == 200
    with app.app_context():
        _, rendered = preview(ALL_TOPICS)
    base = app.config["BASE_URL"]
    for path in ("/meetings/smewg-58", "/meetings/smewg-57", "/projects/toolkit", "/news/nine-projects"):
        assert f'href="{base}{path}"' in rendered.html, path
        assert f"Online: {base}{path}\n" in rendered.text, path
