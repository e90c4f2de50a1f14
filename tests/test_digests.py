"""Digests end to end: compose since the last one, snapshot deliveries, send batches, parse the bytes."""

from __future__ import annotations

import html
import json
import re
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import dkim
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mailer.bounces.verp import Tag, read_verp
from mailer.content.importer import import_text
from mailer.digests import service
from mailer.extensions import db
from mailer.models import ALL_TOPICS, Delivery, Digest, Subscriber, Topic
from mailer.sending import engine
from mailer.tokens import make_token, read_token
from tests.conftest import CaughtMail, wait_until
from tests.data import digest_content, dkim_key

LINK = re.compile(r"(?:https?|webcal)://[^\s<>\"]+")
ATOM = "{http://www.w3.org/2005/Atom}"


def _subscriber(email: str, topics: int, status: str = "confirmed") -> int:
    """Add a subscriber straight through the model; return its id."""
    subscriber = Subscriber(email=email, topics=topics, status=status)
    db.session.add(subscriber)
    db.session.commit()
    return subscriber.id


def _purge_queue(app: Flask) -> None:
    """Drop the send tasks a test queued without a worker to run them."""
    app.extensions["celery"].control.purge()


def _send(app: Flask, digest_id: int) -> engine.BatchReport:
    """Run one send batch of the digest in this process, as a worker's task would."""
    return engine.send_batch(digest_id, app.extensions["mailer.variants"])


def _links(message: EmailMessage) -> tuple[list[str], list[str]]:
    """The URLs in the text part and the hrefs in the HTML part."""
    text = message.get_body(("plain",)).get_content()
    markup = message.get_body(("html",)).get_content()
    return LINK.findall(text), [html.unescape(h) for h in re.findall(r'href="([^"]+)"', markup)]


def _follow(client: FlaskClient, url: str) -> int:
    """GET a link of ours through the test client; return the status code."""
    parts = urlsplit(url)
    return client.get(parts.path + ("?" + parts.query if parts.query else "")).status_code


def test_digest_reaches_each_subscriber_with_their_topics(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, mailbox: CaughtMail, celery_worker: object
) -> None:
    """A sent digest: right recipients and parts, list headers, DKIM, links that resolve and are personal."""
    private, record = dkim_key()
    app.config.update(DKIM_DOMAIN="demo.mailer.invalid", DKIM_SELECTOR="test", DKIM_KEY=private)
    with app.app_context():
        import_text(json.dumps(digest_content()))
        a = _subscriber("a@example.org", ALL_TOPICS)
        b = _subscriber("b@example.org", int(Topic.NEWS))
        projects_only = _subscriber("p@example.org", int(Topic.PROJECTS))
        _subscriber("pending@example.org", ALL_TOPICS, status="pending")
    result = runner.invoke(args=["digest", "send"])
    assert result.exit_code == 0, result.output
    digest_id = int(result.stdout.strip())
    mailbox.wait_for(2)
    with app.app_context():
        wait_until(
            lambda: db.session.execute(db.select(Digest.status).where(Digest.id == digest_id)).scalar() == "sent"
        )
        assert db.session.execute(
            db.select(Delivery.subscriber_id).order_by(Delivery.subscriber_id)
        ).scalars().all() == [a, b]
        assert projects_only not in db.session.execute(db.select(Delivery.subscriber_id)).scalars().all()
    assert sorted(to for _, (to,) in mailbox.envelopes) == ["a@example.org", "b@example.org"]
    # Each email's own bounce address (VERP): BOUNCE_ADDRESS with a tag naming its delivery.
    with app.app_context():
        ids = dict(db.session.execute(db.select(Delivery.email, Delivery.id)).all())
        assert {to: read_verp(sender) for sender, (to,) in mailbox.envelopes} == {
            to: Tag("d", ids[to]) for to in ("a@example.org", "b@example.org")
        }

    (to_a,) = mailbox.to("a@example.org")
    (to_b,) = mailbox.to("b@example.org")
    assert to_a.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in to_a.iter_parts()] == ["text/plain", "text/html"]
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe"):
        assert to_a[name], name
    assert to_a["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<[^@\s]+@demo\.mailer\.invalid>", to_a["Message-ID"])
    assert to_a["Message-ID"] != to_b["Message-ID"]
    assert to_a["Subject"].endswith(": 2 meetings, 1 news item")
    assert to_b["Subject"].endswith(": 1 news item")
    raw_a = mailbox.raw[mailbox.messages.index(to_a)]
    assert dkim.verify(raw_a, dnsfunc=lambda name, timeout=5: record)

    text_a, hrefs_a = _links(to_a)
    assert set(text_a) == set(hrefs_a)
    ours = [u for u in text_a if u.startswith(app.config["BASE_URL"])]
    with app.app_context():
        number = db.session.get(Digest, digest_id).number
    # Both meetings are over: each links its page, and no "Add to calendar".
    assert {urlsplit(u).path for u in ours} >= {f"/archive/{number}", "/meetings/smewg-58", "/meetings/smemm-30"}
    assert not [u for u in ours if u.endswith(".ics")]
    # The calendar of all meetings is offered in every digest, as a webcal: link.
    assert "webcal://" + app.config["BASE_URL"].split("://")[1] + "/meetings.ics" in text_a
    assert all(u.startswith("https://") for u in set(text_a) - set(ours) if not u.startswith("webcal://"))
    for url in ours:
        assert _follow(client, url) == 200, url
    unsubscribe = to_a["List-Unsubscribe"].strip("<>").split(">")[0]
    assert unsubscribe in ours
    with app.app_context():
        assert read_token("unsubscribe", unsubscribe.rsplit("/", 1)[1])[0] == a
        text_b, _ = _links(to_b)
        assert read_token("unsubscribe", next(u for u in text_b if "/unsubscribe/" in u).rsplit("/", 1)[1])[0] == b
    body_b = to_b.get_body(("plain",)).get_content()
    assert "Nine projects under way" in body_b
    assert "58th SMEWG Meeting" not in body_b

    status = runner.invoke(args=["digest", "status", str(digest_id)])
    assert f"digest {digest_id}: sent" in status.output
    assert "sent: 2" in status.output
    assert "queued: 0" in status.output
    assert "failed: 0" in status.output
    for unknown in ("999999", "99999999999999999999", "x"):
        assert runner.invoke(args=["digest", "status", unknown]).exit_code != 0
    assert to_a["Subject"] in client.get("/archive/").get_data(as_text=True)
    feed = ElementTree.fromstring(client.get("/archive/feed.atom").data)
    (entry,) = feed.findall(f"{ATOM}entry")
    assert entry.find(f"{ATOM}link").get("href").endswith(f"/archive/{digest_id}")
    again = runner.invoke(args=["digest", "send"])
    assert again.exit_code != 0
    assert "nothing new since" in again.output


def test_next_digest_holds_only_what_changed_since_the_last(app: Flask, runner: FlaskCliRunner) -> None:
    """Right after a digest the next is refused as empty; editing one item makes it the only one in the next."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
    first = runner.invoke(args=["digest", "send"])
    assert first.exit_code == 0, first.output
    with app.app_context():
        assert db.session.get(Digest, int(first.stdout)).status == "preparing"
        assert service.release_due() == {}
        db.session.expire_all()
        digest = db.session.get(Digest, int(first.stdout))
        # nobody subscribed: done once released
        assert digest.status == "sent"
        assert digest.sent_at
        assert [m["slug"] for m in digest.content["meetings"]] == ["smewg-58", "smemm-30"]
    for args in (["digest", "send"], ["digest", "preview"]):
        empty = runner.invoke(args=args)
        assert empty.exit_code != 0
        assert "nothing new" in empty.output
    with app.app_context():
        edited = digest_content()
        edited["meetings"][1]["status"] = "held"
        import_text(json.dumps(edited))
    preview = runner.invoke(args=["digest", "preview"])
    assert preview.exit_code == 0, preview.output
    assert "30th SME Ministerial Meeting" in preview.output
    assert "58th SMEWG" not in preview.output
    assert "NEWS" not in preview.output
    assert "@@personal" not in preview.output
    second = runner.invoke(args=["digest", "send"])
    with app.app_context():
        content = db.session.get(Digest, int(second.stdout)).content
        assert list(content) == ["meetings"]
        assert content["meetings"][0]["status"] == "held"


def test_preview_filters_topics(app: Flask, runner: FlaskCliRunner) -> None:
    """``--topics news`` previews the news only; an unknown topic is a usage error."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
    news = runner.invoke(args=["digest", "preview", "--topics", "news"])
    assert news.exit_code == 0
    assert "Nine projects under way" in news.output
    assert "MEETINGS" not in news.output
    assert ": 1 news item" in news.output.splitlines()[0]
    bad = runner.invoke(args=["digest", "preview", "--topics", "news,parties"])
    assert bad.exit_code == 2
    assert "unknown topic" in bad.output
    nothing = runner.invoke(args=["digest", "preview", "--topics", "projects"])
    assert nothing.exit_code != 0
    assert "nothing new" in nothing.output


def test_batch_skips_the_unsubscribed_records_failures_and_never_sends_twice(app: Flask, mailbox: CaughtMail) -> None:
    """Unsubscribed after creation: skipped; a 550: failed with the reply; a re-run sends nothing again."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        ids = [_subscriber(f"{n}@example.org", ALL_TOPICS) for n in ("ok", "gone", "left", "jörg")]
        _subscriber("idn@bücher.example", ALL_TOPICS)
        digest = service.create_digest()
        service.release_due()
        _purge_queue(app)
        db.session.execute(db.update(Subscriber).where(Subscriber.id == ids[2]).values(status="unsubscribed"))
        db.session.commit()
        mailbox.reply = lambda sender, to: "550 5.1.1 no such user" if to == ["gone@example.org"] else None
        assert _send(app, digest.id).done
        assert _send(app, digest.id).outcomes == {}
        db.session.expire_all()
        rows = {d.email: d for d in db.session.execute(db.select(Delivery)).scalars()}
        assert (rows["ok@example.org"].status, rows["ok@example.org"].attempts) == ("sent", 1)
        assert rows["ok@example.org"].message_id
        assert rows["ok@example.org"].sent_at
        gone = rows["gone@example.org"]
        assert (gone.status, gone.last_smtp_code, gone.attempts) == ("failed", 550, 1)
        assert "no such user" in gone.last_smtp_reply
        assert rows["left@example.org"].status == "skipped"
        assert rows["jörg@example.org"].status == "failed"
        assert "SMTPUTF8" in rows["jörg@example.org"].last_smtp_reply
        assert db.session.get(Digest, digest.id).status == "sent"
        assert service.delivery_counts(digest.id) == {"sent": 2, "failed": 2, "skipped": 1}
    assert sorted(to for _, (to,) in mailbox.envelopes) == ["idn@xn--bcher-kva.example", "ok@example.org"]


def test_hard_bounce_suppresses_the_address(app: Flask, mailbox: CaughtMail) -> None:
    """A 550 at RCPT: the delivery is bounced with the reply, the address suppressed and logged."""
    mailbox.unknown_users = {"nobody@example.org"}
    with app.app_context():
        import_text(json.dumps(digest_content()))
        gone = _subscriber("nobody@example.org", ALL_TOPICS)
        _subscriber("ok@example.org", ALL_TOPICS)
        digest = service.create_digest()
        service.release_due()
        _purge_queue(app)
        assert _send(app, digest.id).outcomes == {"sent": 1, "bounced": 1}
        bounced = db.session.execute(db.select(Delivery).where(Delivery.subscriber_id == gone)).scalar_one()
        assert (bounced.status, bounced.last_smtp_code) == ("bounced", 550)
        assert "User unknown" in bounced.last_smtp_reply
        subscriber = db.session.get(Subscriber, gone)
        assert subscriber.status == "suppressed"
        assert "User unknown" in subscriber.suppressed_reason
        assert [e.event for e in subscriber.consent_events] == ["suppress"]
        assert service.delivery_counts(digest.id) == {"sent": 1, "bounced": 1}
    assert [to for _, (to,) in mailbox.envelopes] == ["ok@example.org"]


def test_transient_failure_waits_its_backoff_then_fails_after_the_last_attempt(app: Flask, mailbox: CaughtMail) -> None:
    """A 451 leaves the delivery queued with the reply until its backoff; the last attempt marks it failed."""
    app.config.update(SEND_MAX_ATTEMPTS=2, SEND_RETRY_DELAY=3600)
    with app.app_context():
        import_text(json.dumps(digest_content()))
        _subscriber("busy@example.org", ALL_TOPICS)
        digest = service.create_digest()
        service.release_due()
        _purge_queue(app)
        (delivery_id,) = db.session.execute(db.select(Delivery.id)).scalars()
        mailbox.reply = lambda sender, to: "451 4.3.0 try again later"
        report = _send(app, digest.id)
        assert report.outcomes == {"queued": 1}
        assert not report.done
        db.session.expire_all()
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.last_smtp_code) == ("queued", 1, 451)
        assert delivery.next_attempt_at > delivery.updated_at
        assert db.session.get(Digest, digest.id).status == "sending"
        assert _send(app, digest.id).outcomes == {}  # not due yet: nothing is claimed
        db.session.execute(db.update(Delivery).values(next_attempt_at=None))
        db.session.commit()
        assert _send(app, digest.id).outcomes == {"failed": 1}
        db.session.expire_all()
        delivery = db.session.get(Delivery, delivery_id)
        assert (delivery.status, delivery.attempts, delivery.last_smtp_code) == ("failed", 2, 451)
        assert "try again later" in delivery.last_smtp_reply
        assert db.session.get(Digest, digest.id).status == "sent"
    assert mailbox.messages == []


def test_send_task_retries_a_transient_failure(
    app: Flask, runner: FlaskCliRunner, mailbox: CaughtMail, celery_worker: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The send task retries a delivery that met a 4xx once its backoff passed; the second attempt goes through."""
    app.config.update(SEND_RETRY_DELAY=0)
    refusals = iter(["451 4.3.0 busy"])
    mailbox.reply = lambda sender, to: next(refusals, None)
    with app.app_context():
        import_text(json.dumps(digest_content()))
        _subscriber("retry@example.org", ALL_TOPICS)
    digest_id = int(runner.invoke(args=["digest", "send"]).stdout)
    mailbox.wait_for(1)
    with app.app_context():
        wait_until(
            lambda: db.session.execute(db.select(Digest.status).where(Digest.id == digest_id)).scalar() == "sent"
        )
        delivery = db.session.execute(db.select(Delivery)).scalar_one()
        assert (delivery.status, delivery.attempts, delivery.last_smtp_code) == ("sent", 2, 451)


def test_test_send_goes_to_one_address_and_moves_no_watermark(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, mailbox: CaughtMail, celery_worker: object
) -> None:
    """``--test-to`` sends one [TEST] copy whose archive link works only with its token."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        _subscriber("reader@example.org", ALL_TOPICS)
    bad = runner.invoke(args=["digest", "send", "--test-to", "x@example.org\r\nBcc: y@example.org"])
    assert bad.exit_code != 0
    assert "not a valid email address" in bad.output
    result = runner.invoke(args=["digest", "send", "--test-to", "editor@example.org"])
    assert result.exit_code == 0, result.output
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "editor@example.org"
    assert message["Subject"].startswith("[TEST] ")
    archive = next(u for u in _links(message)[0] if "/archive/" in u)
    assert "?t=" in archive
    assert _follow(client, archive) == 200
    assert client.get(urlsplit(archive).path).status_code == 404
    assert client.get(urlsplit(archive).path + "?t=forged").status_code == 404
    with app.app_context():
        wait_until(lambda: db.session.execute(db.select(Digest.status)).scalar() == "sent")
        digest = db.session.execute(db.select(Digest)).scalar_one()
        assert digest.is_test
        assert digest.test_to == "editor@example.org"
        assert db.session.execute(db.select(db.func.count()).select_from(Delivery)).scalar() == 0
    assert "No digest has been sent yet" in client.get("/archive/").get_data(as_text=True)
    assert runner.invoke(args=["digest", "preview"]).exit_code == 0


def test_scheduled_digest_is_released_when_due(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """``--at`` schedules without deliveries; when due, release_due snapshots them and queues it."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        _subscriber("reader@example.org", ALL_TOPICS)
    past = runner.invoke(args=["digest", "send", "--at", "2020-01-01T09:00"])
    assert past.exit_code != 0
    assert "not in the future" in past.output
    assert runner.invoke(args=["digest", "send", "--at", "tomorrow"]).exit_code == 2
    at = datetime.now(UTC) + timedelta(hours=2)
    result = runner.invoke(args=["digest", "send", "--at", at.isoformat()])
    assert result.exit_code == 0, result.output
    digest_id = int(result.stdout)
    with app.app_context():
        digest = db.session.get(Digest, digest_id)
        assert digest.status == "scheduled"
        assert abs(digest.scheduled_at - at) < timedelta(seconds=1)
        assert service.release_due() == {}
        assert service.release_due(now=at + timedelta(seconds=1)) == {digest_id: 1}
        assert service.release_due(now=at + timedelta(seconds=1)) == {}
        db.session.expire_all()
        assert db.session.get(Digest, digest_id).status == "queued"
        assert service.delivery_counts(digest_id) == {"queued": 1}
    beat = app.extensions["celery"].conf.beat_schedule
    assert any(entry["task"] == "mailer.digests.release_scheduled" for entry in beat.values())


@pytest.mark.parametrize(
    ("at", "stored"),
    [
        ("2027-01-15T09:00", datetime(2027, 1, 15, 1, 0, tzinfo=UTC)),  # naive: Asia/Singapore
        ("2027-01-15T09:00+01:00", datetime(2027, 1, 15, 8, 0, tzinfo=UTC)),  # an offset is kept
    ],
)
def test_send_at_takes_a_naive_time_in_the_org_zone(
    app: Flask, runner: FlaskCliRunner, at: str, stored: datetime
) -> None:
    """``--at`` without an offset is a local time in ORG_TIMEZONE; with one, that offset."""
    app.config["ORG_TIMEZONE"] = "Asia/Singapore"
    with app.app_context():
        import_text(json.dumps(digest_content()))
    result = runner.invoke(args=["digest", "send", "--at", at])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Digest, int(result.stdout)).scheduled_at == stored


def test_send_at_refuses_a_local_time_the_clocks_skip(app: Flask, runner: FlaskCliRunner) -> None:
    """A naive --at that a clock change skips names no moment: exit 2 with the reason, nothing scheduled."""
    app.config["ORG_TIMEZONE"] = "Europe/Paris"
    with app.app_context():
        import_text(json.dumps(digest_content()))
    result = runner.invoke(args=["digest", "send", "--at", "2027-03-28T02:30"])
    assert result.exit_code == 2
    assert "28 March 2027 02:30 in Europe/Paris does not exist" in result.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Digest)).scalar() == 0


def test_a_test_copys_archive_link_expires(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    """The token in a test copy's "view in browser" link works until TEST_LINK_MAX_AGE, then the page is a 404."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        digest = service.create_digest(test_to="editor@example.org")
        link = f"/archive/test/{digest.id}?t=" + make_token("archive", digest.id)
    _purge_queue(app)
    assert client.get(link).status_code == 200
    app.config["TEST_LINK_MAX_AGE"] = 0
    time.sleep(1.1)
    assert client.get(link).status_code == 404
