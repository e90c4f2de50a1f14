"""Feeds in: a real HTTP server on 127.0.0.1 serves RSS, Atom and iCalendar documents that the fetcher reads.

Nothing of the fetcher is mocked: each test changes what the server answers (a new entry, an
edit, an HTTP 500, a stall) and checks what the database holds afterwards.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from mailer.content.importer import save_item
from mailer.content.schema import entry
from mailer.content.service import archive_item, delete_item
from mailer.extensions import db
from mailer.feeds import service
from mailer.feeds.fetch import FetchError, _pinned
from mailer.feeds.parse import text_from_html
from mailer.models import AuditEntry, Feed, FeedEntry, Meeting, MeetingChange, NewsItem
from tests.feedserver import FeedServer

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def rss(*items: dict[str, str], title: str = "SMEWG news") -> str:
    """An RSS 2.0 document holding ``items`` (each a dict of element name to already escaped content)."""
    body = "".join("<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in item.items()) + "</item>" for item in items)
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'


FIRST = {"guid": "news-1", "title": "Nine projects under way", "link": "https://www.apec.org/news/1",
         "description": "&lt;p&gt;The SMEWG is implementing nine projects.&lt;/p&gt;",
         "pubDate": "Tue, 04 Feb 2025 10:00:00 GMT"}  # fmt: skip
SECOND = {"guid": "urn:smewg:news-2", "title": "Four more endorsed", "description": "Endorsed in 2024.",
          "pubDate": "Wed, 05 Feb 2025 10:00:00 GMT"}  # fmt: skip


def ics(*events: str, name: str = "SMEWG meetings") -> str:
    """An iCalendar document with ``events`` (each the lines of one VEVENT, without BEGIN/END)."""
    body = "".join(f"BEGIN:VEVENT\r\n{event.strip()}\r\nEND:VEVENT\r\n" for event in events)
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nX-WR-CALNAME:{name}\r\n{body}END:VCALENDAR\r\n"


LIMA = """UID:smewg-58@apec.example
SUMMARY:58th SMEWG Meeting
DTSTART;VALUE=DATE:20250304
DTEND;VALUE=DATE:20250306
LOCATION:Lima
DESCRIPTION:Second meeting of the year.
URL:https://www.apec.org/smewg-58"""
# 22:00 in Lima on 10 March is 11 March in Singapore, where the organisation reads its dates.
EVENING = """UID:evening@apec.example
SUMMARY:Evening call
DTSTART;TZID=America/Lima:20250310T220000
DTEND;TZID=America/Lima:20250310T230000"""
CANCELLED = """UID:cancelled@apec.example
SUMMARY:Workshop on digital trade
DTSTART:20250320T020000Z
DTEND:20250320T060000Z
STATUS:CANCELLED"""
WEEKLY = """UID:weekly@apec.example
SUMMARY:Weekly coordination
DTSTART:20250301T010000Z
DTEND:20250301T020000Z
RRULE:FREQ=WEEKLY"""


def _add(app: Flask, url: str, kind: str = "news", meeting_kind: str | None = None) -> int:
    """Add a feed as the CLI would; return its id."""
    with app.app_context():
        return service.add_feed(url, kind, meeting_kind, actor="test", now=NOW).id


def _fetch(app: Flask, feed_id: int, now: datetime = NOW) -> service.FetchReport:
    """Fetch one feed at ``now``."""
    with app.app_context():
        return service.fetch_feed(feed_id, now)


def _news(app: Flask) -> dict[str, dict[str, Any]]:
    """Every news item by slug: its fields, source, updated_at and archived_at."""
    with app.app_context():
        items = db.session.execute(db.select(NewsItem)).scalars()
        return {n.slug: {**entry("news", n), "source": n.source, "updated_at": n.updated_at,
                         "archived_at": n.archived_at} for n in items}  # fmt: skip


def _meetings(app: Flask) -> dict[str, dict[str, Any]]:
    """Every meeting by title: its fields, source and calendar sequence."""
    with app.app_context():
        items = db.session.execute(db.select(Meeting)).scalars()
        return {m.title: {**entry("meetings", m), "source": m.source, "sequence": m.sequence} for m in items}


def _feed(app: Flask, feed_id: int) -> Feed:
    """The feed row, detached."""
    with app.app_context():
        feed = db.session.get(Feed, feed_id)
        db.session.expunge(feed)
        return feed


def test_first_fetch_imports_and_the_second_is_a_304(app: Flask, feed_server: FeedServer) -> None:
    """New entries become news items (source, link, clean body); a second fetch is conditional and changes nothing."""
    url = feed_server.serve("/news.rss", rss(FIRST, SECOND), "application/rss+xml")
    feed_id = _add(app, url)
    report = _fetch(app, feed_id)
    assert report.summary() == "2 created, 0 updated, 0 unchanged, 0 skipped"
    news = _news(app)
    first = news["nine-projects-under-way"]
    assert first["source"] == url
    assert first["link"] == "https://www.apec.org/news/1"
    assert first["body"] == "The SMEWG is implementing nine projects."
    assert first["published_on"] == "2025-02-04"
    assert news["four-more-endorsed"]["link"] is None
    with app.app_context():
        guids = set(db.session.execute(db.select(FeedEntry.guid).where(FeedEntry.feed_id == feed_id)).scalars())
        assert guids == {feed_server.url("/news-1"), "urn:smewg:news-2"}  # a relative guid, resolved
        assert db.session.execute(db.select(AuditEntry.action).where(AuditEntry.actor == "feeds")).scalars().all() == [
            "feeds.fetch"
        ]
    feed = _feed(app, feed_id)
    assert (feed.title, feed.failures, feed.last_error, feed.last_success_at) == ("SMEWG news", 0, None, NOW)
    assert feed.next_fetch_at == NOW + timedelta(seconds=app.config["FEED_FETCH_INTERVAL"])
    assert "mailer" in feed_server.hits("/news.rss")[0]["User-Agent"]

    later = NOW + timedelta(hours=1)
    again = _fetch(app, feed_id, later)
    assert again.not_modified
    headers = feed_server.hits("/news.rss")[-1]
    assert headers["If-None-Match"] == feed.etag
    assert headers["If-Modified-Since"] == feed.last_modified
    assert {slug: item["updated_at"] for slug, item in _news(app).items()} == {
        slug: item["updated_at"] for slug, item in news.items()
    }
    assert _feed(app, feed_id).last_success_at == later


def test_an_edited_entry_updates_but_a_staff_edit_survives(app: Flask, feed_server: FeedServer) -> None:
    """The feed changes title and body; staff had changed the title: the body follows the feed, the title stays."""
    url = feed_server.serve("/news.rss", rss(FIRST), "application/rss+xml")
    feed_id = _add(app, url)
    _fetch(app, feed_id)
    slug = "nine-projects-under-way"
    with app.app_context():
        edited = {**entry("news", db.session.execute(db.select(NewsItem)).scalar_one()), "title": "Nine projects"}
        save_item("news", edited, actor="editor@example.org", new=False)
    before = _news(app)[slug]["updated_at"]
    changed = {**FIRST, "title": "Nine projects are under way", "description": "Now ten projects.&lt;br&gt;See more."}
    feed_server.serve("/news.rss", rss(changed), "application/rss+xml")
    report = _fetch(app, feed_id, NOW + timedelta(hours=1))
    assert report.updated == {"news": [slug]}
    item = _news(app)[slug]
    assert (item["title"], item["body"]) == ("Nine projects", "Now ten projects.\n\nSee more.")
    assert item["updated_at"] > before
    # Once more with the same document: nothing to do, and the staff title still stands.
    feed_server.serve("/news.rss", rss(changed), "application/rss+xml")
    assert _fetch(app, feed_id, NOW + timedelta(hours=2)).summary() == "0 created, 0 updated, 1 unchanged, 0 skipped"
    assert _news(app)[slug]["title"] == "Nine projects"


def test_archived_stays_archived_and_deleted_is_not_made_again(app: Flask, feed_server: FeedServer) -> None:
    """Staff hid one item and deleted the other: a re-fetch with edits to both brings neither back."""
    url = feed_server.serve("/news.rss", rss(FIRST, SECOND), "application/rss+xml")
    feed_id = _add(app, url)
    _fetch(app, feed_id)
    with app.app_context():
        assert archive_item("news", "nine-projects-under-way", actor="editor@example.org")
        assert delete_item("news", "four-more-endorsed", actor="editor@example.org")
    feed_server.serve("/news.rss", rss({**FIRST, "description": "Edited."}, {**SECOND, "description": "Edited."}),
                      "application/rss+xml")  # fmt: skip
    _fetch(app, feed_id, NOW + timedelta(hours=1))
    news = _news(app)
    assert list(news) == ["nine-projects-under-way"]
    assert news["nine-projects-under-way"]["archived_at"] is not None
    assert news["nine-projects-under-way"]["body"] == "Edited."


def test_html_becomes_clean_text() -> None:
    """Scripts, styles, event handlers and javascript: links go; block tags become paragraphs; entities characters."""
    markup = (
        '<h2>Ministers &amp; SMEs</h2><script>alert("x")</script><style>p{}</style>'
        '<p>See <a href="javascript:alert(1)" onclick="x()">this</a> &mdash; <img src=x onerror="alert(1)">now.</p>'
        "<ul><li>one&nbsp;&lt;b&gt;</li><li>two</li></ul>line<br>break<!-- hidden -->"
    )
    assert text_from_html(markup) == "Ministers & SMEs\n\nSee this — now.\n\none <b>\n\ntwo\n\nline\n\nbreak"


def test_hostile_entry_is_imported_as_text(app: Flask, feed_server: FeedServer) -> None:
    """An entry with a script, an onerror and a javascript: link is stored as plain text without its link."""
    description = "&lt;img src=x onerror=alert(1)&gt;&lt;script&gt;alert(2)&lt;/script&gt;Hello &amp;amp; bye"
    title = "A &amp;amp; B &lt;b&gt;bold&lt;/b&gt;"
    hostile = {"guid": "x", "title": title, "link": "javascript:alert(1)", "description": description}
    feed_id = _add(app, feed_server.serve("/news.rss", rss(hostile), "application/rss+xml"))
    _fetch(app, feed_id)
    (item,) = _news(app).values()
    assert (item["title"], item["body"], item["link"]) == ("A & B bold", "Hello & bye", None)


def test_atom_dates_are_read_in_the_org_time_zone(app: Flask, feed_server: FeedServer) -> None:
    """An Atom entry updated at 20:00 UTC was published the next day in Singapore; its HTML content is used."""
    app.config["ORG_TIMEZONE"] = "Asia/Singapore"
    atom = """<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom news</title>
<id>urn:feed</id><updated>2025-02-04T20:00:00Z</updated><entry><id>urn:entry:1</id><title>Trade ministers meet</title>
<link href="https://www.apec.org/atom/1"/><updated>2025-02-04T20:00:00Z</updated>
<content type="html">&lt;p&gt;First.&lt;/p&gt;&lt;p&gt;Second.&lt;/p&gt;</content></entry></feed>"""
    feed_id = _add(app, feed_server.serve("/news.atom", atom, "application/atom+xml"))
    _fetch(app, feed_id)
    item = _news(app)["trade-ministers-meet"]
    assert (item["published_on"], item["body"], item["link"]) == (
        "2025-02-05",
        "First.\n\nSecond.",
        "https://www.apec.org/atom/1",
    )


def test_calendar_becomes_meetings(app: Flask, feed_server: FeedServer) -> None:
    """Events become meetings of the feed's kind: dates in ORG_TIMEZONE, cancelled kept as such, recurring skipped."""
    app.config["ORG_TIMEZONE"] = "Asia/Singapore"
    url = feed_server.serve("/meetings.ics", ics(LIMA, EVENING, CANCELLED, WEEKLY), "text/calendar")
    feed_id = _add(app, url, "meetings", "working-group")
    report = _fetch(app, feed_id)
    assert report.summary() == "3 created, 0 updated, 0 unchanged, 1 skipped (1 recurring)"
    meetings = _meetings(app)
    lima = meetings["58th SMEWG Meeting"]
    assert (lima["start_date"], lima["end_date"], lima["city"], lima["status"]) == (
        "2025-03-04",
        "2025-03-05",
        "Lima",
        "upcoming",
    )
    assert (lima["kind"], lima["summary"], lima["link"], lima["source"]) == (
        "working-group", "Second meeting of the year.", "https://www.apec.org/smewg-58", url)  # fmt: skip
    assert (meetings["Evening call"]["start_date"], meetings["Evening call"]["end_date"]) == (
        "2025-03-11",
        "2025-03-11",
    )
    assert meetings["Workshop on digital trade"]["status"] == "cancelled"
    assert _feed(app, feed_id).title == "SMEWG meetings"


def test_calendar_is_idempotent_by_uid_and_edits_bump_the_sequence(app: Flask, feed_server: FeedServer) -> None:
    """The same events again change nothing; a moved meeting updates with a higher SEQUENCE and a history row,
    while the place staff corrected stays theirs."""
    feed_id = _add(app, feed_server.serve("/meetings.ics", ics(LIMA, CANCELLED), "text/calendar"), "meetings")
    _fetch(app, feed_id)
    feed_server.serve("/meetings.ics", ics(CANCELLED, LIMA), "text/calendar")  # new ETag, same events
    assert _fetch(app, feed_id).summary() == "0 created, 0 updated, 2 unchanged, 0 skipped"
    with app.app_context():
        row = db.session.execute(db.select(Meeting).where(Meeting.title == "58th SMEWG Meeting")).scalar_one()
        save_item(
            "meetings", {**entry("meetings", row), "city": "Lima (Miraflores)"}, actor="ed@example.org", new=False
        )
        row = db.session.execute(db.select(Meeting).where(Meeting.title == "58th SMEWG Meeting")).scalar_one()
        sequence = row.sequence
    moved = LIMA.replace("20250304", "20250311").replace("20250306", "20250313").replace("Lima", "Cusco")
    feed_server.serve("/meetings.ics", ics(moved, CANCELLED), "text/calendar")
    report = _fetch(app, feed_id, NOW + timedelta(hours=1))
    assert sum(len(v) for v in report.updated.values()) == 1
    lima = _meetings(app)["58th SMEWG Meeting"]
    assert (lima["start_date"], lima["end_date"], lima["city"]) == ("2025-03-11", "2025-03-12", "Lima (Miraflores)")
    assert lima["sequence"] > sequence
    assert lima["kind"] == "other"
    with app.app_context():
        changes = db.session.execute(db.select(MeetingChange.changes).order_by(MeetingChange.id)).scalars().all()
    assert changes[-1] == {"start_date": ["2025-03-04", "2025-03-11"], "end_date": ["2025-03-05", "2025-03-12"]}


@pytest.mark.parametrize(
    ("document", "error"),
    [
        ({"body": "", "content_type": "text/plain", "status": 500}, "the server answered HTTP 500"),
        ({"body": "<html><body>Hello</body></html>", "content_type": "text/html"}, "not an RSS or Atom feed"),
        ({"body": "x" * 5000, "content_type": "application/rss+xml"}, "larger than 4 KB"),
        ({"body": "x" * 5000, "content_type": "application/rss+xml", "length": False}, "larger than 4 KB"),
        ({"body": rss(FIRST), "content_type": "application/rss+xml", "stall": 10}, "timed out after 1 s"),
    ],
)
def test_a_broken_feed_is_reported_and_backed_off(
    app: Flask, runner: FlaskCliRunner, feed_server: FeedServer, document: dict[str, Any], error: str
) -> None:
    """The failure in words on the feed and in ``feeds list``, counted, nothing imported, the next fetch later."""
    app.config.update(FEED_TIMEOUT=1, FEED_MAX_BYTES=4096)
    url = feed_server.serve("/news.rss", **document)
    feed_id = _add(app, url)
    report = _fetch(app, feed_id)
    assert report.error == error
    feed = _feed(app, feed_id)
    interval = timedelta(seconds=app.config["FEED_FETCH_INTERVAL"])
    assert (feed.last_error, feed.failures, feed.next_fetch_at) == (error, 1, NOW + 2 * interval)
    assert feed.last_success_at is None
    _fetch(app, feed_id, NOW + timedelta(hours=3))
    feed = _feed(app, feed_id)
    assert (feed.failures, feed.next_fetch_at) == (2, NOW + timedelta(hours=3) + 4 * interval)
    assert _news(app) == {}
    listed = runner.invoke(args=["feeds", "list"])
    assert f"failing (2 in a row): {error}" in listed.output


def test_not_a_calendar_is_reported(app: Flask, feed_server: FeedServer) -> None:
    """A meetings feed that serves an RSS document says it is not iCalendar."""
    feed_id = _add(app, feed_server.serve("/cal.ics", rss(FIRST), "text/calendar"), "meetings")
    assert _fetch(app, feed_id).error == "not an iCalendar document"
    assert _meetings(app) == {}


def test_a_connection_refused_is_reported(app: Flask) -> None:
    """Nothing listening: "could not connect"."""
    from tests.conftest import free_port

    feed_id = _add(app, f"http://127.0.0.1:{free_port()}/feed")
    assert _fetch(app, feed_id).error.startswith("could not connect: ")


def test_two_admins_adding_one_feed_at_once_make_one(app: Flask) -> None:
    """Two additions of the same address (case of the host aside) at the same moment: one feed, one refusal."""
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def add(url: str) -> None:
        with app.app_context():
            start.wait()
            try:
                service.add_feed(url, "news", None, actor="test", now=NOW)
                outcomes.append("added")
            except service.FeedError as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=add, args=(url,)) for url in ("https://example.org/n", "https://EXAMPLE.org/n")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["added", "this feed is already there"]
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Feed)).scalar_one() == 1


def test_private_networks_are_refused_unless_allowed(app: Flask, feed_server: FeedServer) -> None:
    """FEED_ALLOW_PRIVATE off (production's default): a feed on this machine is refused before any request
    (each redirect's target is checked the same way); on, the same feed is read."""
    app.config.update(FEED_ALLOW_PRIVATE=False)
    feed_id = _add(app, feed_server.serve("/news.rss", rss(FIRST), "application/rss+xml"))
    assert _fetch(app, feed_id).error == "127.0.0.1 is on a private or local network, which feeds may not reach"
    assert feed_server.requests == []
    assert _news(app) == {}
    app.config.update(FEED_ALLOW_PRIVATE=True)
    assert _fetch(app, feed_id, NOW + timedelta(days=1)).error is None
    assert len(_news(app)) == 1


@pytest.mark.parametrize(
    "url", ["http://localhost/feed", "http://10.1.2.3/feed", "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/feed", "http://[::ffff:127.0.0.1]/feed", "https://192.168.0.1/feed", "http://0.0.0.0/"],
)  # fmt: skip
def test_each_kind_of_inside_address_is_refused(url: str) -> None:
    """Loopback, private, link-local (cloud metadata), mapped and unspecified addresses are all refused."""
    with pytest.raises(FetchError, match="is on a private or local network"):
        _pinned(url, allow_private=False)


def test_a_public_address_is_pinned_with_its_name_kept() -> None:
    """The request goes to the checked address; the Host header and the TLS server name stay the feed's."""
    target, headers, extensions = _pinned("https://93.184.215.14:8443/feed.xml?x=1", allow_private=False)
    assert target == "https://93.184.215.14:8443/feed.xml?x=1"
    assert headers == {"Host": "93.184.215.14:8443"}
    assert extensions == {"sni_hostname": "93.184.215.14"}
    assert _pinned("http://127.0.0.1/feed", allow_private=True) == ("http://127.0.0.1/feed", {}, {})


def test_success_clears_the_failure(app: Flask, feed_server: FeedServer) -> None:
    """After a failure, a good fetch clears the error and the count, and plans the next fetch an interval on."""
    feed_server.serve("/news.rss", "", "text/plain", status=503)
    feed_id = _add(app, feed_server.url("/news.rss"))
    _fetch(app, feed_id)
    feed_server.serve("/news.rss", rss(FIRST), "application/rss+xml")
    later = NOW + timedelta(hours=5)
    assert _fetch(app, feed_id, later).summary().startswith("1 created")
    feed = _feed(app, feed_id)
    assert (feed.last_error, feed.failures) == (None, 0)
    assert feed.next_fetch_at == later + timedelta(seconds=app.config["FEED_FETCH_INTERVAL"])


def test_backoff_is_capped_at_a_day(app: Flask) -> None:
    """Many failures in a row wait a day at most."""
    from tests.conftest import free_port

    feed_id = _add(app, f"http://127.0.0.1:{free_port()}/feed")
    with app.app_context():
        db.session.get(Feed, feed_id).failures = 30
        db.session.commit()
    _fetch(app, feed_id)
    assert _feed(app, feed_id).next_fetch_at == NOW + timedelta(days=1)


def test_fetch_due_claims_each_due_feed_once(app: Flask, feed_server: FeedServer) -> None:
    """Due feeds are fetched once each; a claimed feed cannot be claimed again; feeds not due wait."""
    due = [_add(app, feed_server.serve(f"/{n}.rss", rss(FIRST), "application/rss+xml")) for n in ("a", "b")]
    later = _add(app, feed_server.serve("/c.rss", rss(FIRST), "application/rss+xml"))
    with app.app_context():
        db.session.get(Feed, later).next_fetch_at = NOW + timedelta(minutes=5)
        db.session.commit()
        assert service.claim(due[0], NOW)
        assert not service.claim(due[0], NOW)
        db.session.get(Feed, due[0]).next_fetch_at = NOW
        db.session.commit()
        reports = service.fetch_due(NOW)
        assert sorted(r.feed_id for r in reports) == due
        assert service.fetch_due(NOW) == []
    assert [len(feed_server.hits(f"/{n}.rss")) for n in ("a", "b", "c")] == [1, 1, 0]


def test_fetch_due_in_two_threads_fetches_each_feed_once(app: Flask, feed_server: FeedServer) -> None:
    """Two workers at once: every due feed is fetched by one of them."""
    feeds = [_add(app, feed_server.serve(f"/{n}.rss", rss({**FIRST, "guid": n}), "application/rss+xml"))
             for n in "abcd"]  # fmt: skip
    done: list[int] = []

    def worker() -> None:
        """One worker's beat tick."""
        with app.app_context():
            done.extend(r.feed_id for r in service.fetch_due(NOW))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(done) == feeds
    assert [len(feed_server.hits(f"/{n}.rss")) for n in "abcd"] == [1, 1, 1, 1]


def test_cli_add_list_fetch_remove(app: Flask, runner: FlaskCliRunner, feed_server: FeedServer) -> None:
    """The commands from PRODUCT.md, start to end; the items stay when the feed goes."""
    url = feed_server.serve("/cal.ics", ics(LIMA), "text/calendar")
    added = runner.invoke(args=["feeds", "add", url, "--as", "meetings", "--kind", "working-group"])
    assert added.exit_code == 0, added.output
    assert added.output == f"added feed 1: {url} as meetings\n"
    fetched = runner.invoke(args=["feeds", "fetch", "1"])
    assert (fetched.exit_code, fetched.output) == (0, "feed 1: 1 created, 0 updated, 0 unchanged, 0 skipped\n")
    listed = runner.invoke(args=["feeds", "list"])
    assert f"1  meetings (working-group)  {url}  checked " in listed.output
    assert "1 items from 1 entries" in listed.output
    assert runner.invoke(args=["feeds", "fetch"]).output == "feed 1: not modified since the last fetch\n"
    removed = runner.invoke(args=["feeds", "remove", "1"])
    assert (removed.exit_code, removed.output) == (0, f"removed feed 1: {url}\n")
    assert _meetings(app)["58th SMEWG Meeting"]["source"] == url
    with app.app_context():
        assert db.session.execute(db.select(FeedEntry)).first() is None
        actions = db.session.execute(db.select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions == ["feeds.add", "feeds.fetch", "feeds.remove"]


def test_cli_fetch_failure_exits_non_zero(app: Flask, runner: FlaskCliRunner, feed_server: FeedServer) -> None:
    """A failing fetch prints the reason and exits 1; an unknown feed is one line."""
    feed_id = _add(app, feed_server.serve("/news.rss", "", "text/plain", status=500))
    result = runner.invoke(args=["feeds", "fetch", str(feed_id)])
    assert (result.exit_code, result.output) == (1, f"feed {feed_id}: failed: the server answered HTTP 500\n")
    unknown = runner.invoke(args=["feeds", "fetch", "99"])
    assert (unknown.exit_code, unknown.output) == (1, "Error: there is no feed 99\n")
    assert runner.invoke(args=["feeds", "remove", "99"]).exit_code == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not a url", "--as", "news"], "one line without spaces"),
        (["example.org/feed", "--as", "news"], "must be an http:// or https:// URL"),
        (["javascript:alert(1)", "--as", "news"], "must be an http:// or https:// URL"),
        (["ftp://example.org/feed.xml", "--as", "news"], "must be an http:// or https:// URL"),
        (["https://example.org/" + "x" * 2000, "--as", "news"], "longer than 2000 characters"),
        (["https://example.org/feed", "--as", "projects"], "kind must be one of news, meetings"),
        (["https://example.org/feed", "--as", "meetings", "--kind", "party"], "kind of meeting must be one of"),
        (["https://example.org/feed", "--as", "news", "--kind", "workshop"], "kind of meeting must be one of"),
        (["https://EXAMPLE.org/known", "--as", "news"], "already there"),
        (["https://example.org/\ud800", "--as", "news"], "not valid text"),
    ],
)
def test_cli_bad_input_changes_nothing(app: Flask, runner: FlaskCliRunner, args: list[str], message: str) -> None:
    """Each refusal is one line and a non-zero exit; the one known feed is all there is."""
    _add(app, "https://example.org/known")
    result = runner.invoke(args=["feeds", "add", *args])
    assert result.exit_code != 0
    assert result.output.count("\n") == 1, result.output
    assert message in result.output, result.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Feed)).scalar() == 1


def test_an_invalid_entry_is_skipped_not_fatal(app: Flask, feed_server: FeedServer) -> None:
    """An event without a title fails the importer's rules: it is counted, the others come in."""
    untitled = "UID:untitled@apec.example\nDTSTART;VALUE=DATE:20250401"
    feed_id = _add(app, feed_server.serve("/cal.ics", ics(LIMA, untitled), "text/calendar"), "meetings")
    assert _fetch(app, feed_id).summary() == "1 created, 0 updated, 0 unchanged, 1 skipped (1 invalid)"
    assert list(_meetings(app)) == ["58th SMEWG Meeting"]


def test_redirects_are_followed_five_times_at_most(app: Flask, feed_server: FeedServer) -> None:
    """A moved feed is read where it moved (relative Location too); a sixth redirect, or one to ftp:, is a failure."""
    feed_server.serve("/real.rss", rss(FIRST), "application/rss+xml")
    feed_server.serve("/moved.rss", b"", "text/plain", location="/real.rss")
    assert _fetch(app, _add(app, feed_server.url("/moved.rss"))).summary().startswith("1 created")
    for hop in range(6):
        feed_server.serve(f"/loop{hop}", b"", "text/plain", location=feed_server.url(f"/loop{hop + 1}"))
    feed_server.serve("/loop6", rss(FIRST), "application/rss+xml")
    assert _fetch(app, _add(app, feed_server.url("/loop0"))).error == "more than 5 redirects"
    feed_server.serve("/ftp", b"", "text/plain", location="ftp://example.org/feed.xml")
    assert (
        _fetch(app, _add(app, feed_server.url("/ftp"))).error
        == "not an http:// or https:// address: ftp://example.org/feed.xml"
    )
    assert len(_news(app)) == 1


def test_broken_events_are_left_out_and_counted() -> None:
    """No UID, an unreadable start, a series: each is counted by its reason; a repeated property takes its first."""
    from zoneinfo import ZoneInfo

    from mailer.feeds.parse import parse_calendar

    document = ics(
        "SUMMARY:No UID\nDTSTART;VALUE=DATE:20250401",
        "UID:broken@x\nSUMMARY:Broken\nDTSTART;VALUE=DATE:2025",
        WEEKLY,
        "UID:twice@x\nSUMMARY:First\nSUMMARY:Second\nDTSTART;VALUE=DATE:20250401\nSTATUS:CANCELLED\nSTATUS:CONFIRMED",
    )
    parsed = parse_calendar(document.encode(), ZoneInfo("UTC"), NOW.date(), "workshop")
    assert parsed.left_out == {"no UID": 1, "unreadable": 1, "recurring": 1}
    (only,) = parsed.entries
    assert (only.guid, only.values["title"], only.values["status"], only.values["kind"]) == (
        "twice@x", "First", "cancelled", "workshop")  # fmt: skip
