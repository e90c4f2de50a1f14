"""Meeting changes reach people: the next digest's "Changed since our last digest", a meeting's change history,
and a news item's "Read more" link."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event

from mailer.content.importer import import_text
from mailer.digests import service
from mailer.digests.compose import SNAPSHOT_BATCH, compose_next, last_seen, render_content
from mailer.extensions import db
from mailer.feeds import service as feeds
from mailer.models import ALL_TOPICS, Digest, Meeting, MeetingChange, Subscriber, Topic
from mailer.sending import engine
from tests.conftest import CaughtMail
from tests.data import meeting, news_item
from tests.feedserver import FeedServer
from tests.test_feeds import LIMA, ics

GOLDEN = Path(__file__).parent / "golden"
CHANGED = "CHANGED SINCE OUR LAST DIGEST"


def _meeting(**overrides: object) -> dict[str, object]:
    """The 59th SMEWG meeting, upcoming in Lima on 1–2 December 2026, with ``overrides`` applied."""
    return meeting(
        **{"slug": "smewg-59", "title": "59th SMEWG Meeting", "number": 59, "start_date": "2026-12-01",
           "end_date": "2026-12-02", "status": "upcoming", **overrides}
    )  # fmt: skip


def _import(meetings: Sequence[dict[str, object]] = (), news: Sequence[dict[str, object]] = ()) -> None:
    """Import these meetings and news items (new ones created, known ones updated)."""
    import_text(json.dumps({"meetings": list(meetings), "news": list(news)}))


def _subscriber(email: str, topics: int) -> None:
    """Add a confirmed subscriber to ``topics``."""
    db.session.add(Subscriber(email=email, topics=topics, status="confirmed"))
    db.session.commit()


def _send_digest(app: Flask) -> int:
    """Create the next digest and send all of it in this process (real SMTP); return its id."""
    digest_id = service.create_digest().id
    service.release_due()
    app.extensions["celery"].control.purge()  # the send tasks: this test sends in-process
    while not engine.send_batch(digest_id, app.extensions["mailer.variants"]).done:
        pass
    db.session.expire_all()
    assert db.session.get(Digest, digest_id).status == "sent"
    return digest_id


def _parts(message: EmailMessage) -> tuple[str, str]:
    """The text (with plain newlines) and HTML parts of a caught email."""
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    return text, message.get_body(("html",)).get_content()


def _rendered(topics: int = ALL_TOPICS) -> tuple[str, str, str]:
    """The subject, text and HTML of the next digest as readers of ``topics`` would get it."""
    next_digest = compose_next(topics)
    subject, rendered = render_content(next_digest.content, topics, next_digest.until, "https://x.example/a")
    return subject, rendered.text, rendered.html


def test_a_changed_meeting_opens_the_next_digest_once(app: Flask, mailbox: CaughtMail) -> None:
    """Moved and re-placed after digest 1: digest 2 opens with old → new (text and HTML), listed once; digest 3
    (an unrelated news item) has no Changed section; readers without meetings never see one; a meeting new since
    digest 1 and edited before digest 2 is an ordinary item."""
    with app.app_context():
        _subscriber("all@example.org", ALL_TOPICS)
        _subscriber("news@example.org", int(Topic.NEWS))
        _import([_meeting()], [news_item()])
        _send_digest(app)
        _import([_meeting(start_date="2026-12-08", end_date="2026-12-09", city="Cusco")])
        _import([_meeting(slug="smewg-60", title="60th SMEWG Meeting", number=60, start_date="2027-03-01",
                          end_date="2027-03-02")])  # fmt: skip
        _import([_meeting(slug="smewg-60", title="60th SMEWG Meeting", number=60, start_date="2027-03-03",
                          end_date="2027-03-04", status="postponed")])  # fmt: skip
        _import(news=[news_item(slug="agenda", title="Agenda published")])
        second = _send_digest(app)
        assert "was" not in db.session.get(Digest, second).content["meetings"][1]
        _import(news=[news_item(slug="report", title="Report out")])
        _send_digest(app)
    first, second, third = mailbox.to("all@example.org")
    text, markup = _parts(second)
    assert second["Subject"].endswith(": 2 meetings (1 changed), 1 news item")
    assert text.index(CHANGED) < text.index("MEETINGS") < text.index("NEWS")
    changed = text[text.index(CHANGED) : text.index("MEETINGS")]
    assert "* 59th SMEWG Meeting\n" in changed
    assert "  Dates: 1–2 December 2026 → 8–9 December 2026\n" in changed
    assert "  Place: Lima, Peru → Cusco, Peru\n" in changed
    assert "Status:" not in changed
    assert "60th SMEWG Meeting" in text[text.index("MEETINGS") :]
    assert "3–4 March 2027, Lima, Peru (postponed)" in text
    assert text.count("59th SMEWG Meeting") == 1
    assert re.search(r"<h2[^>]*>Changed since our last digest</h2>", markup)
    assert markup.index("Changed since our last digest") < markup.index(">Meetings</h2>")
    assert re.search(r"<strong>Dates:</strong> 1–2 December 2026 <span[^>]*>→</span> 8–9 December 2026</p>", markup)
    assert re.search(r"<strong>Place:</strong> Lima, Peru <span[^>]*>→</span> Cusco, Peru</p>", markup)
    assert 'aria-label="changed to"' in markup
    assert markup.count("59th SMEWG Meeting") == 1
    for message in (first, third, *mailbox.to("news@example.org")):
        text, markup = _parts(message)
        assert CHANGED not in text
        assert "Changed since" not in markup
    assert "59th SMEWG Meeting" not in _parts(third)[0]
    assert third["Subject"].endswith(": 1 news item")
    assert len(mailbox.to("news@example.org")) == 3


def test_a_cancelled_meeting_is_announced_as_cancelled(app: Flask) -> None:
    """A cancellation reads as one plain line with the dates and place readers had; the subject says so."""
    with app.app_context():
        _import([_meeting(start_date="2026-12-08", end_date="2026-12-09")])
        service.create_digest()
        _import([_meeting(start_date="2026-12-08", end_date="2026-12-09", status="cancelled")])
        subject, text, markup = _rendered()
    assert subject.endswith(": 1 meeting cancelled")
    assert "* Cancelled: 59th SMEWG Meeting (was 8–9 December 2026, Lima, Peru)\n" in text
    assert "Status:" not in text
    assert "Add to calendar" not in text
    assert "MEETINGS" not in text
    assert re.search(r"<h3[^>]*>Cancelled: <a [^>]*>59th SMEWG Meeting</a></h3>", markup)
    assert "Was 8–9 December 2026 · Lima, Peru</p>" in markup


def test_only_dates_place_and_status_make_a_change(app: Flask) -> None:
    """Summary, link and title alone keep a meeting an ordinary item; a title changed with its dates is shown."""
    with app.app_context():
        _import([_meeting(), _meeting(slug="smewg-60", title="60th SMEWG Meeting")])
        service.create_digest()
        _import([_meeting(title="59th SMEWG Meeting (Lima)", summary="New agenda.", link="https://www.apec.org/"),
                 _meeting(slug="smewg-60", title="60th SMEWG", status="postponed")])  # fmt: skip
        subject, text, _ = _rendered()
    assert subject.endswith(": 2 meetings (1 changed)")
    changed, listed = text[text.index(CHANGED) : text.index("MEETINGS")], text[text.index("MEETINGS") :]
    assert "  Title: 60th SMEWG Meeting → 60th SMEWG\n" in changed
    assert "  Status: upcoming → postponed\n" in changed
    assert "59th SMEWG Meeting (Lima)" in listed
    assert "New agenda." in listed


def test_the_latest_real_snapshot_is_what_readers_saw(app: Flask) -> None:
    """The comparison is with the newest non-test digest carrying the meeting, found past more than a batch of
    newer digests; a test send and a cancelled digest are not what readers saw; a new meeting reads no snapshot."""
    with app.app_context():
        _import([_meeting()])
        service.create_digest()
        _import([_meeting(city="Cusco")])
        service.create_digest()
        for n in range(SNAPSHOT_BATCH + 2):
            _import([_meeting(slug="smewg-60", title="60th SMEWG Meeting", summary=f"Update {n}.")])
            service.create_digest()
        _import([_meeting(city="Arequipa")])
        service.create_digest(test_to="test@example.org")
        _import([_meeting(city="Trujillo")])
        cancelled = service.create_digest()
        cancelled.status = "cancelled"
        db.session.commit()
        seen = last_seen({"smewg-59", "nothing"})
        assert list(seen) == ["smewg-59"]
        assert (seen["smewg-59"]["city"], seen["smewg-59"]["was"]) == ("Cusco", {"city": "Lima"})
        _import([_meeting(city="Piura")])
        assert "  Place: Cusco, Peru → Piura, Peru\n" in _rendered()[1]
        _import([_meeting(slug="smewg-61", title="61st SMEWG Meeting")])
        statements: list[str] = []

        def record(conn: object, cursor: object, statement: str, *args: object) -> None:
            """Keep each SQL statement sent to the database."""
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert last_seen({"smewg-61"}) == {}
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
        assert not [sql for sql in statements if "digests.content" in sql]


def test_changed_values_are_escaped(app: Flask, client: FlaskClient) -> None:
    """Markup and quotes in a changed value are text in the HTML email and on the meeting's page."""
    hostile = '<script>alert("x")</script> O\'Brien'
    with app.app_context():
        _import([_meeting()])
        service.create_digest()
        _import([_meeting(city=hostile)])
        _, text, markup = _rendered()
    assert f"Place: Lima, Peru → {hostile}, Peru" in text
    assert "<script>" not in markup
    assert '&lt;script&gt;alert("x")&lt;/script&gt; O\'Brien, Peru</p>' in markup  # as the CSS inliner writes it
    page = client.get("/meetings/smewg-59").get_data(as_text=True)
    assert "<script>alert" not in page
    assert "place Lima → &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; O&#39;Brien" in page


def test_meeting_page_shows_its_history_newest_first(app: Flask, client: FlaskClient) -> None:
    """No history section until a change; then every change in words, newest first, dated in ORG_TIMEZONE."""
    with app.app_context():
        _import([_meeting()])
    assert "Change history" not in client.get("/meetings/smewg-59").get_data(as_text=True)
    with app.app_context():
        app.config["ORG_TIMEZONE"] = "Asia/Singapore"
        _import([_meeting(start_date="2026-12-08", end_date="2026-12-09", city="Cusco")])
        _import([_meeting(start_date="2026-12-08", end_date="2026-12-09", city="Cusco", status="postponed",
                          summary="Agenda to follow.")])  # fmt: skip
        _import([_meeting(start_date="2026-12-08", end_date="2026-12-09", city="Cusco", status="postponed",
                          summary="Agenda out.")])  # fmt: skip
        older, newer = db.session.execute(db.select(MeetingChange).order_by(MeetingChange.id)).scalars()
        older.changed_at = datetime(2026, 12, 2, 17, 30, tzinfo=UTC)  # 3 December in Singapore
        newer.changed_at = datetime(2026, 12, 4, 1, 0, tzinfo=UTC)
        db.session.commit()
    page = client.get("/meetings/smewg-59").get_data(as_text=True)
    history = page[page.index("Change history") :]
    lines = re.findall(r"<li><time datetime=\"([^\"]+)\">([^<]+)</time>: ([^<]+)</li>", history)
    assert lines == [
        ("2026-12-04T09:00:00+08:00", "4 December 2026", "status upcoming → postponed"),
        ("2026-12-03T01:30:00+08:00", "3 December 2026", "dates 1–2 December → 8–9 December 2026; place Lima → Cusco"),
    ]


def test_news_read_more_link_in_email_and_page(app: Flask, client: FlaskClient) -> None:
    """A news item's link reads "Read more" in both parts of the digest and on its page; none without a link."""
    with app.app_context():
        _import(news=[news_item(link="https://www.apec.org/press?id=1&x=2"), news_item(slug="plain", title="Plain")])
        _, text, markup = _rendered()
    assert text.count("Read more") == 1
    assert "  Read more: https://www.apec.org/press?id=1&x=2\n" in text
    assert markup.count("Read more") == 1
    assert re.search(r'<a href="https://www.apec.org/press\?id=1&amp;x=2"[^>]*>Read more</a>', markup)
    page = client.get("/news/nine-projects").get_data(as_text=True)
    assert '<a href="https://www.apec.org/press?id=1&amp;x=2" rel="noopener">Read more</a>' in page
    assert "Read more" not in client.get("/news/plain").get_data(as_text=True)


def test_console_preview_shows_the_changes(app: Flask, runner: FlaskCliRunner) -> None:
    """``digest preview`` (through compose) opens with the Changed section; ``--topics news`` has none."""
    with app.app_context():
        _import([_meeting()])
        service.create_digest()
        _import([_meeting(status="postponed")], [news_item()])
    preview = runner.invoke(args=["digest", "preview"])
    assert preview.exit_code == 0, preview.output
    assert preview.output.index(CHANGED) < preview.output.index("NEWS")
    assert "  Status: upcoming → postponed\n" in preview.output
    assert ": 1 meeting changed, 1 news item" in preview.output.splitlines()[0]
    news_only = runner.invoke(args=["digest", "preview", "--topics", "news"])
    assert CHANGED not in news_only.output


def test_changed_section_matches_golden_files(app: Flask) -> None:
    """A digest with a moved meeting, a cancelled one, an ordinary one and a linked news item, against golden copies."""
    was = {"start_date": "2026-12-01", "end_date": "2026-12-02", "city": "Lima"}
    content = {
        "meetings": [
            {**_meeting(summary=None, link=None, demo=False, city="Cusco", start_date="2026-12-08",
                        end_date="2026-12-09"), "was": was},
            {**_meeting(slug="smewg-57", title="57th SMEWG Meeting", number=57, summary=None, link=None, demo=False,
                        status="cancelled"), "was": {"status": "upcoming"}},
            _meeting(slug="smewg-60", title="60th SMEWG Meeting", number=60, start_date="2027-08-09",
                     end_date="2027-08-10", summary=None, link=None, demo=False),
        ],
        "news": [{**news_item(demo=False), "link": "https://www.apec.org/press/1"}],
    }  # fmt: skip
    with app.app_context():
        when = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        subject, rendered = render_content(content, ALL_TOPICS, when, app.config["BASE_URL"] + "/archive/8")
    assert subject == "SMEWG News (demo) — November 2026: 3 meetings (1 cancelled, 1 changed), 1 news item"
    for name, part in (("digest-changes.txt", rendered.text), ("digest-changes.html", rendered.html)):
        actual = part.replace(app.config["BASE_URL"], "https://mailer.example")
        path = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(actual)
        assert actual == path.read_text(), f"{name} changed; rerun with UPDATE_GOLDEN=1 and review the diff"


def test_archive_page_shows_the_changes(app: Flask, client: FlaskClient) -> None:
    """The digest's page in the archive (its "view in browser") shows the Changed section too."""
    with app.app_context():
        _import([_meeting()])
        service.create_digest()
        _import([_meeting(city="Cusco")])
        number = service.create_digest().number
    page = client.get(f"/archive/{number}").get_data(as_text=True)
    assert "Changed since our last digest" in page
    assert "<strong>Place:</strong> Lima, Peru → Cusco, Peru" in page


def test_a_meeting_the_calendar_feed_moves_is_announced_once(
    app: Flask, mailbox: CaughtMail, feed_server: FeedServer
) -> None:
    """End to end from a feed: a meeting imported from the organisation's calendar goes out in digest 1; the
    calendar moves and then cancels it; each change opens the next digest, once, and the page keeps the history."""
    url = feed_server.serve("/meetings.ics", ics(LIMA), "text/calendar")
    with app.app_context():
        _subscriber("all@example.org", ALL_TOPICS)
        feed_id = feeds.add_feed(url, "meetings", "working-group", actor="test").id
        assert feeds.fetch_feed(feed_id).error is None
        _send_digest(app)
        moved = LIMA.replace("20250304", "20250311").replace("20250306", "20250313")
        feed_server.serve("/meetings.ics", ics(moved), "text/calendar")
        assert feeds.fetch_feed(feed_id).error is None
        _send_digest(app)
        feed_server.serve("/meetings.ics", ics(moved + "\r\nSTATUS:CANCELLED"), "text/calendar")
        assert feeds.fetch_feed(feed_id).error is None
        _send_digest(app)
        slug = db.session.execute(db.select(Meeting.slug)).scalar_one()
    first, second, third = mailbox.to("all@example.org")
    assert CHANGED not in _parts(first)[0]
    text = _parts(second)[0]
    assert second["Subject"].endswith(": 1 meeting changed")
    assert "  Dates: 4–5 March 2025 → 11–12 March 2025\n" in text[text.index(CHANGED) :]
    text = _parts(third)[0]
    assert third["Subject"].endswith(": 1 meeting cancelled")
    assert "Cancelled: 58th SMEWG Meeting (was 11–12 March 2025, Lima)" in text
    assert "4–5 March 2025" not in text
    page = app.test_client().get(f"/meetings/{slug}").get_data(as_text=True)
    history = re.findall(r"<li><time [^>]*>[^<]*</time>: ([^<]*)</li>", page[page.index("Change history") :])
    assert len(history) == 2
    assert "cancelled" in history[0]
    assert "4–5 March" in history[1]
