"""The console's feeds page: admins add and remove feeds, anyone on the team fetches now and sees how fetches went."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import AuditEntry, Feed, NewsItem
from tests.conftest import AuthActions, wait_until
from tests.feedserver import FeedServer
from tests.test_feeds import FIRST, rss


@pytest.fixture
def admin(auth: AuthActions) -> FlaskClient:
    """A signed-in admin."""
    return auth.login("admin@example.org", "admin")


def _feeds(app: Flask) -> list[str]:
    """Every feed's URL."""
    with app.app_context():
        return list(db.session.execute(db.select(Feed.url).order_by(Feed.id)).scalars())


def _news(app: Flask) -> dict[str, NewsItem]:
    """Every news item by slug, detached."""
    with app.app_context():
        items = db.session.execute(db.select(NewsItem)).scalars().all()
        for item in items:
            db.session.expunge(item)
        return {item.slug: item for item in items}


def test_pages_need_sign_in(client: FlaskClient) -> None:
    """Visitors are sent to sign in."""
    assert client.get("/staff/feeds/").status_code == 302
    assert client.get("/staff/feeds/1/remove").status_code == 302


def test_admin_adds_a_feed_and_fetch_now_brings_it_in(
    app: Flask, admin: FlaskClient, auth: AuthActions, feed_server: FeedServer, celery_worker: object
) -> None:
    """Added through the form, fetched by a real worker on "Fetch now", its item carries the feed on its edit page."""
    url = feed_server.serve("/news.rss", rss(FIRST), "application/rss+xml")
    response = auth.post("/staff/feeds/", {"url": url, "kind": "news", "meeting_kind": ""})
    assert response.status_code == 303
    page = admin.get("/staff/feeds/").get_data(as_text=True)
    assert url in page
    assert "not yet" in page
    assert auth.post("/staff/feeds/1/fetch").status_code == 303
    wait_until(lambda: _news(app))
    page = admin.get("/staff/feeds/").get_data(as_text=True)
    assert "SMEWG news" in page
    assert "1 (1 entries)" in page
    assert "never" not in page
    form = admin.get("/staff/content/news/nine-projects-under-way").get_data(as_text=True)
    assert f"From feed {url}" in form
    with app.app_context():
        actions = db.session.execute(db.select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id)).all()
    assert ("feeds.add", "admin@example.org") in actions
    assert ("feeds.fetch", "admin@example.org") in actions


def test_a_console_edit_survives_a_refetch(
    app: Flask, admin: FlaskClient, auth: AuthActions, feed_server: FeedServer
) -> None:
    """The title edited in the console stays; the body the feed changed follows the feed."""
    from mailer.feeds.service import add_feed, fetch_feed

    url = feed_server.serve("/news.rss", rss(FIRST), "application/rss+xml")
    with app.app_context():
        feed_id = add_feed(url, "news", None, actor="test").id
        fetch_feed(feed_id)
    item = _news(app)["nine-projects-under-way"]
    edited = {"title": "Nine projects", "published_on": item.published_on.isoformat(), "body": item.body,
              "link": item.link or ""}  # fmt: skip
    assert auth.post("/staff/content/news/nine-projects-under-way", edited).status_code == 303
    feed_server.serve("/news.rss", rss({**FIRST, "title": "Ten projects", "description": "Ten now."}), "text/xml")
    with app.app_context():
        assert fetch_feed(feed_id).updated == {"news": ["nine-projects-under-way"]}
    item = _news(app)["nine-projects-under-way"]
    assert (item.title, item.body) == ("Nine projects", "Ten now.")


def test_a_failing_feed_shows_its_failure_in_words(
    app: Flask, admin: FlaskClient, feed_server: FeedServer, runner: object
) -> None:
    """HTTP 500 twice: the page says so, highlighted, with the count and the next try."""
    from mailer.feeds.service import add_feed, fetch_feed

    url = feed_server.serve("/news.rss", "", "text/plain", status=500)
    with app.app_context():
        feed_id = add_feed(url, "news", None, actor="test").id
        fetch_feed(feed_id)
        fetch_feed(feed_id)
    page = admin.get("/staff/feeds/").get_data(as_text=True)
    assert '<p class="error" role="alert">Failing (2 times in a row): the server answered HTTP 500. Next try' in page
    assert _news(app) == {}


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"url": ""}, "url", "Enter the feed&#39;s address."),
        ({"url": "not a url"}, "url", "The address must be one line without spaces."),
        ({"url": "javascript:alert(1)"}, "url", "The address must be an http:// or https:// URL."),
        ({"url": "ftp://example.org/feed"}, "url", "The address must be an http:// or https:// URL."),
        ({"url": "https://example.org/" + "x" * 2000}, "url", "longer than 2000 characters"),
        ({"url": "https://example.org/known"}, "url", "This feed is already there."),
        ({"kind": "projects"}, "kind", "Not a valid choice"),
        ({"kind": "meetings", "meeting_kind": "party"}, "meeting_kind", "Not a valid choice"),
    ],
)
def test_bad_input_is_a_form_error_and_adds_nothing(
    app: Flask, admin: FlaskClient, auth: AuthActions, data: dict[str, str], field: str, message: str
) -> None:
    """400 with the problem under its field; the one known feed is all there is."""
    from mailer.feeds.service import add_feed

    with app.app_context():
        add_feed("https://example.org/known", "news", None, actor="test")
    response = auth.post("/staff/feeds/", {"url": "https://example.org/new", "kind": "news", **data})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert f'id="{field}-error"' in page
    assert message in page
    assert _feeds(app) == ["https://example.org/known"]


def test_post_without_csrf_token_is_refused(app: Flask, admin: FlaskClient) -> None:
    """A forged add, fetch or remove: 400 and nothing changes."""
    from mailer.feeds.service import add_feed

    with app.app_context():
        add_feed("https://example.org/known", "news", None, actor="test")
    assert admin.post("/staff/feeds/", data={"url": "https://example.org/x", "kind": "news"}).status_code == 400
    assert admin.post("/staff/feeds/1/fetch").status_code == 400
    assert admin.post("/staff/feeds/1/remove", data={"confirm": "remove"}).status_code == 400
    assert _feeds(app) == ["https://example.org/known"]


def test_remove_asks_first_and_a_replay_is_404(app: Flask, admin: FlaskClient, auth: AuthActions) -> None:
    """GET asks; a POST without the confirmation is refused; the confirmed POST removes; replayed, it is 404."""
    from mailer.feeds.service import add_feed

    with app.app_context():
        add_feed("https://example.org/feed", "news", None, actor="test")
    question = admin.get("/staff/feeds/1/remove").get_data(as_text=True)
    assert "Remove this feed?" in question
    assert "https://example.org/feed" in question
    assert auth.post("/staff/feeds/1/remove").status_code == 400
    assert _feeds(app) == ["https://example.org/feed"]
    assert auth.post("/staff/feeds/1/remove", {"confirm": "remove"}).status_code == 303
    assert _feeds(app) == []
    assert auth.post("/staff/feeds/1/remove", {"confirm": "remove"}).status_code == 404
    assert admin.get("/staff/feeds/1/remove").status_code == 404
    assert auth.post("/staff/feeds/1/fetch").status_code == 404
    for path in ("/staff/feeds/99999999999/remove", "/staff/feeds/0/fetch"):
        assert admin.get(path).status_code in (404, 405)


def test_an_editor_sees_and_fetches_but_cannot_add_or_remove(app: Flask, auth: AuthActions) -> None:
    """Editors get the list and "Fetch now"; adding and removing answer 403 and change nothing."""
    from mailer.feeds.service import add_feed

    with app.app_context():
        add_feed("https://example.org/feed", "news", None, actor="test")
    editor = auth.login()
    page = editor.get("/staff/feeds/").get_data(as_text=True)
    assert "https://example.org/feed" in page
    assert "Add a feed" not in page
    assert "Remove" not in page
    assert auth.post("/staff/feeds/", {"url": "https://example.org/x", "kind": "news"}).status_code == 403
    assert editor.get("/staff/feeds/1/remove").status_code == 403
    assert auth.post("/staff/feeds/1/remove", {"confirm": "remove"}).status_code == 403
    assert _feeds(app) == ["https://example.org/feed"]
