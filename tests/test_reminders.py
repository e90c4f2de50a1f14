"""Meeting reminders: who gets one and when, once only, through the send engine; the preferences choice; the console."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mailer.content.display import org_today
from mailer.content.importer import import_text
from mailer.content.service import archive_item
from mailer.digests.compose import compose_next, watermark
from mailer.digests.service import create_digest
from mailer.extensions import db
from mailer.models import ALL_TOPICS, ConsentEvent, Delivery, Digest, Subscriber, SubscriberStatus, Topic, utcnow
from mailer.reminders import service
from mailer.reminders.tasks import send_due as send_due_task
from mailer.sending import engine
from mailer.sending.control import ring
from mailer.staff.charts import digest_outcomes
from mailer.subscriptions.links import preferences_url
from mailer.tokens import read_token
from tests.conftest import AuthActions, CaughtMail, csrf_token, wait_until
from tests.data import meeting
from tests.subscribing import add_subscriber, events, subscriber, text_of

LINK = re.compile(r"https?://[^\s<>\"]+")
ZONE = "Pacific/Auckland"
#: 00:30 on 5 December 2026 in Auckland (NZDT, +13), while it is still 4 December in UTC.
JUST_AFTER_MIDNIGHT = datetime(2026, 12, 4, 11, 30, tzinfo=UTC)
#: 23:30 on 4 December 2026 in Auckland.
JUST_BEFORE_MIDNIGHT = datetime(2026, 12, 4, 10, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def org_zone(app: Flask) -> None:
    """The organisation is in Auckland, far from UTC; reminders go from 08:00 unless a test says otherwise."""
    app.config.update(ORG_TIMEZONE=ZONE, REMINDER_HOUR=8)


def _reader(app: Flask, email: str, days: int | None, topics: int = ALL_TOPICS,
            status: SubscriberStatus = SubscriberStatus.CONFIRMED) -> int:  # fmt: skip
    """A subscriber with a reminder ``days`` before each meeting; its id."""
    subscriber_id = add_subscriber(app, email, status, topics)
    with app.app_context():
        db.session.get(Subscriber, subscriber_id).reminder_days = days
        db.session.commit()
    return subscriber_id


def _meeting(app: Flask, slug: str, start: date, **overrides: object) -> None:
    """Import (or change) an upcoming two-day meeting starting on ``start``."""
    fields = {"slug": slug, "title": f"Meeting {slug}", "status": "upcoming", **overrides}
    fields |= {"start_date": start.isoformat(), "end_date": (start + timedelta(days=1)).isoformat()}
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(**fields)]}))


def _send_due(app: Flask, now: datetime) -> dict[int, int]:
    """Run the reminders' service at ``now``."""
    with app.app_context():
        return service.send_due(now)


def _reminders(app: Flask) -> list[tuple[str, str, list[str]]]:
    """Every reminder made: its key, subject and the addresses of its deliveries."""
    with app.app_context():
        rows = db.session.execute(db.select(Digest).where(Digest.kind == "reminder").order_by(Digest.id)).scalars()
        return [
            (d.reminder_key, d.subject, sorted(x.email for x in d.deliveries)) for d in rows
        ]  # fmt: skip


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    """``hour:minute`` on ``day`` in the organisation's zone, as UTC."""
    from zoneinfo import ZoneInfo

    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)


def _links(message: EmailMessage) -> tuple[list[str], list[str]]:
    """The URLs of the text part and the hrefs of the HTML part."""
    markup = message.get_body(("html",)).get_content()
    return LINK.findall(text_of(message)), re.findall(r'href="([^"]+)"', markup)


def _path(url: str) -> str:
    """The path of one of our URLs."""
    return urlsplit(url).path


def test_a_reminder_reaches_who_asked_once_through_a_worker(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """Only the confirmed meetings subscriber who chose 3 days gets it, once, with working personal links."""
    app.config.update(REMINDER_HOUR=0)
    with app.app_context():
        today = org_today(utcnow())
    start = today + timedelta(days=3)
    _meeting(app, "smewg-59", start, title="59th SMEWG Meeting", city="Lima", economy="Peru")
    _meeting(app, "smewg-cancelled", start, status="cancelled")
    _meeting(app, "smewg-held", start, status="held")
    _meeting(app, "smewg-postponed", start, status="postponed")
    _meeting(app, "smewg-archived", start)
    with app.app_context():
        archive_item("meetings", "smewg-archived", actor="test")
    ann = _reader(app, "ann@example.org", 3)
    _reader(app, "bob@example.org", None)
    _reader(app, "cid@example.org", 2)
    _reader(app, "dan@example.org", 3, status=SubscriberStatus.UNSUBSCRIBED)
    _reader(app, "eve@example.org", 3, topics=int(Topic.PROJECTS | Topic.NEWS))
    _reader(app, "fay@example.org", 3, status=SubscriberStatus.PENDING)

    app.extensions["celery"].send_task("mailer.reminders.send_due")
    (message,) = mailbox.wait_for(1)
    with app.app_context():
        wait_until(lambda: db.session.execute(db.select(Digest.status)).scalar() == "sent")
        digest = db.session.execute(db.select(Digest)).scalar_one()
        assert (digest.kind, digest.number, digest.is_test, digest.topics) == ("reminder", None, False, 1)
        assert db.session.execute(db.select(Delivery.email)).scalars().all() == ["ann@example.org"]
    assert digest.reminder_key.endswith(f":{start.isoformat()}:3")
    assert [to for _, (to,) in mailbox.envelopes] == ["ann@example.org"]
    when = f"{start.day} {start:%B %Y}"
    assert message["Subject"] == f"Reminder: 59th SMEWG Meeting starts in 3 days ({when})"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Feedback-ID"].startswith(f"{digest.id}:reminder:")
    assert message["Archived-At"] is None
    text = text_of(message)
    assert "You asked for a reminder 3 days before each meeting" in text
    assert "Lima, Peru" in text
    assert "View this email in your browser" not in text

    urls, hrefs = _links(message)
    assert set(urls) == set(hrefs)
    paths = {_path(u) for u in urls}
    assert {"/meetings/smewg-59", "/meetings/smewg-59.ics"} <= paths
    for url in urls:
        assert client.get(_path(url)).status_code == 200, url
    unsubscribe = message["List-Unsubscribe"].strip("<>").split(">")[0]
    assert unsubscribe in urls
    manage = next(u for u in urls if "/subscriptions/manage/" in u)
    with app.app_context():
        # A token carries the second it was made, so compare what it says, not its text.
        assert manage.rsplit("/", 1)[0] == preferences_url(ann, 1).rsplit("/", 1)[0]
        assert read_token("manage", manage.rsplit("/", 1)[1]) == [ann, 1]
    assert "Meeting reminders" in client.get(_path(manage)).get_data(as_text=True)
    one_click = app.test_client(use_cookies=False).post(_path(unsubscribe), data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert subscriber(app, "ann@example.org").status == "unsubscribed"

    # Again, from the task (run here) or the service: nothing more.
    send_due_task()
    assert _send_due(app, utcnow()) == {}
    assert len(_reminders(app)) == 1
    assert len(mailbox.messages) == 1


def test_the_organisations_date_and_hour_decide(app: Flask, mailbox: CaughtMail) -> None:
    """At 23:30 in Auckland a meeting 4 local days away is not due; at 00:30 it is 3 days away and due (UTC still
    says 4); before REMINDER_HOUR nothing goes, from it the reminder does."""
    app.config.update(REMINDER_HOUR=0)
    _meeting(app, "smewg-59", date(2026, 12, 8))
    _reader(app, "ann@example.org", 3)
    assert _send_due(app, JUST_BEFORE_MIDNIGHT) == {}
    made = _send_due(app, JUST_AFTER_MIDNIGHT)
    assert list(made.values()) == [1]
    assert _reminders(app) == [
        ("meeting:1:2026-12-08:3", "Reminder: Meeting smewg-59 starts in 3 days (8 December 2026)", ["ann@example.org"])
    ]
    with app.app_context():
        report = engine.send_batch(next(iter(made)), app.extensions["mailer.variants"])
    assert report.sent == 1
    assert mailbox.to("ann@example.org")

    app.config.update(REMINDER_HOUR=8)
    _meeting(app, "smewg-60", date(2026, 12, 9))
    assert _send_due(app, _local(date(2026, 12, 6), 7, 59)) == {}
    assert len(_send_due(app, _local(date(2026, 12, 6), 8, 0))) == 1
    assert [key for key, *_ in _reminders(app)] == ["meeting:1:2026-12-08:3", "meeting:2:2026-12-09:3"]


def test_two_runs_at_once_make_one_reminder(app: Flask) -> None:
    """Two workers racing on the same due reminder: the unique key lets one make it, the other makes nothing."""
    _meeting(app, "smewg-59", date(2026, 12, 8))
    for n in range(5):
        _reader(app, f"r{n}@example.org", 3)
    now = _local(date(2026, 12, 5), 9)
    results: list[dict[int, int]] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        """One racer."""
        with app.app_context():
            barrier.wait()
            results.append(service.send_due(now))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(len(r) for r in results) == [0, 1]
    assert [deliveries for r in results for deliveries in r.values()] == [5]
    assert len(_reminders(app)) == 1
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(Delivery.id))).scalar() == 5
    assert _send_due(app, now) == {}


def test_late_reminders_catch_up_until_the_day_before(app: Flask) -> None:
    """Missed on its day (nothing ran), a reminder still goes later, up to the day before; never on the day."""
    _meeting(app, "smewg-59", date(2026, 12, 8))
    _meeting(app, "smewg-60", date(2026, 12, 6))
    _reader(app, "ann@example.org", 3)
    assert _send_due(app, _local(date(2026, 12, 6), 9)) != {}
    assert [(key, subject) for key, subject, _ in _reminders(app)] == [
        ("meeting:1:2026-12-08:3", "Reminder: Meeting smewg-59 starts in 2 days (8 December 2026)"),
    ]
    _meeting(app, "smewg-61", date(2026, 12, 7))
    assert _send_due(app, _local(date(2026, 12, 6), 10)) != {}
    assert _reminders(app)[-1][1] == "Reminder: Meeting smewg-61 starts tomorrow (7 December 2026)"


def test_a_moved_meeting_gets_a_new_reminder_and_a_cancelled_one_none(app: Flask) -> None:
    """The date is in the key: moved later, readers are reminded of the new date; cancelled after, nothing more."""
    _meeting(app, "smewg-59", date(2026, 12, 8))
    _reader(app, "ann@example.org", 3)
    assert len(_send_due(app, _local(date(2026, 12, 5), 9))) == 1
    _meeting(app, "smewg-59", date(2026, 12, 15))
    assert _send_due(app, _local(date(2026, 12, 5), 10)) == {}
    assert _send_due(app, _local(date(2026, 12, 11), 9)) == {}
    assert len(_send_due(app, _local(date(2026, 12, 12), 9))) == 1
    assert [key for key, *_ in _reminders(app)] == ["meeting:1:2026-12-08:3", "meeting:1:2026-12-15:3"]
    _meeting(app, "smewg-59", date(2026, 12, 22), status="cancelled")
    assert _send_due(app, _local(date(2026, 12, 19), 9)) == {}
    assert len(_reminders(app)) == 2


def test_each_lead_time_is_its_own_reminder(app: Flask) -> None:
    """Readers who chose 1 week and 3 days get one reminder each, each at its own time; nobody's at another's."""
    _meeting(app, "smewg-59", date(2026, 12, 15))
    _reader(app, "week@example.org", 7)
    _reader(app, "three@example.org", 3)
    _send_due(app, _local(date(2026, 12, 8), 9))
    _send_due(app, _local(date(2026, 12, 12), 9))
    week, three = _reminders(app)
    assert week == ("meeting:1:2026-12-15:7", "Reminder: Meeting smewg-59 starts in 1 week (15 December 2026)",
                    ["week@example.org"])  # fmt: skip
    assert three == ("meeting:1:2026-12-15:3", "Reminder: Meeting smewg-59 starts in 3 days (15 December 2026)",
                     ["three@example.org"])  # fmt: skip


def test_a_long_title_is_cut_to_fit_the_subject(app: Flask) -> None:
    """A 300-character title still makes a subject the column holds."""
    _meeting(app, "smewg-59", date(2026, 12, 8), title="A" * 300)
    _reader(app, "ann@example.org", 3)
    _send_due(app, _local(date(2026, 12, 5), 9))
    ((_, subject, _),) = _reminders(app)
    assert len(subject) == 300
    assert subject.endswith("A… starts in 3 days (8 December 2026)")


def test_a_reminder_leaves_digests_alone(app: Flask, client: FlaskClient) -> None:
    """The watermark and the next digest's content do not move; the archive and its feed show no reminder."""
    app.config.update(REMINDER_HOUR=0)
    with app.app_context():
        start = org_today(utcnow()) + timedelta(days=2)
    _meeting(app, "smewg-59", start)
    _reader(app, "ann@example.org", 3)
    with app.app_context():
        before = (watermark(), compose_next().content)
    assert _send_due(app, utcnow())
    with app.app_context():
        assert (watermark(), compose_next().content) == before
        assert compose_next().content["meetings"][0]["slug"] == "smewg-59"
        db.session.execute(db.update(Digest).values(status="sent", started_at=utcnow(), sent_at=utcnow()))
        db.session.commit()
        assert digest_outcomes() == []
        digest = create_digest()
        assert digest.number == 1
    assert "Reminder:" not in client.get("/archive/").get_data(as_text=True)
    assert b"Reminder:" not in client.get("/archive/feed.atom").data


def _preferences(app: Flask, client: FlaskClient, email: str) -> tuple[str, str]:
    """The path of ``email``'s preferences page and the page's CSRF token."""
    with app.app_context():
        row = db.session.execute(db.select(Subscriber).where(Subscriber.email == email)).scalar_one()
        path = _path(preferences_url(row.id, row.link_version))
    return path, csrf_token(client.get(path).get_data(as_text=True))


def test_preferences_show_and_save_the_reminder(app: Flask, client: FlaskClient) -> None:
    """The page offers the choice; saving it is logged in the consent event; the page shows it chosen."""
    add_subscriber(app, "ann@example.org", SubscriberStatus.CONFIRMED)
    path, token = _preferences(app, client, "ann@example.org")
    page = client.get(path).get_data(as_text=True)
    assert "Meeting reminders" in page
    for label in ("None", "1 day before", "2 days before", "3 days before", "1 week before", "2 weeks before"):
        assert f">{label}</option>" in page
    saved = client.post(path, data={"csrf_token": token, "topics": ["meetings", "news"], "reminder_days": "3"})
    assert saved.status_code == 303
    assert subscriber(app, "ann@example.org").reminder_days == 3
    assert '<option selected value="3">' in client.get(path).get_data(as_text=True)
    event = events(app, "ann@example.org")[-1]
    assert (event.event, event.detail["reminder_days"], event.detail["previous_reminder_days"]) == (
        "preferences", 3, None
    )  # fmt: skip
    client.post(path, data={"csrf_token": token, "topics": ["meetings", "news"], "reminder_days": ""})
    assert subscriber(app, "ann@example.org").reminder_days is None
    assert events(app, "ann@example.org")[-1].detail["previous_reminder_days"] == 3


@pytest.mark.parametrize(
    "value",
    ["0", "31", "4", "abc", "-1", "9" * 400, "3\r\nBcc: x@example.org", "3 ", "1e1", ["3", "7"], ["", "3"]],
    ids=["0", "31", "not-offered", "abc", "-1", "huge", "injected", "space", "float", "repeated", "repeated-empty"],
)
def test_a_bad_reminder_is_refused_and_changes_nothing(app: Flask, client: FlaskClient, value: object) -> None:
    """Anything but one offered choice: 400 with the form's error, and the row and consent log as they were."""
    _reader(app, "ann@example.org", 7)
    path, token = _preferences(app, client, "ann@example.org")
    with app.app_context():
        logged = db.session.execute(db.select(db.func.count(ConsentEvent.id))).scalar()
    refused = client.post(
        path, data={"csrf_token": token, "name": "Ann", "topics": ["meetings"], "reminder_days": value}
    )
    assert refused.status_code == 400
    assert "reminder" in refused.get_data(as_text=True).split('class="error"', 1)[1].split("</p>", 1)[0].lower()
    row = subscriber(app, "ann@example.org")
    assert (row.name, row.reminder_days) == (None, 7)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ConsentEvent.id))).scalar() == logged


def test_a_reminder_without_the_meetings_topic_is_refused(app: Flask, client: FlaskClient) -> None:
    """Reminders are about meetings: without the Meetings topic the form says so and saves nothing."""
    _reader(app, "ann@example.org", 3)
    path, token = _preferences(app, client, "ann@example.org")
    refused = client.post(path, data={"csrf_token": token, "topics": ["news"], "reminder_days": "3"})
    assert refused.status_code == 400
    assert "Meeting reminders come with the Meetings topic" in refused.get_data(as_text=True)
    row = subscriber(app, "ann@example.org")
    assert (Topic(row.topics), row.reminder_days) == (Topic(ALL_TOPICS), 3)
    saved = client.post(path, data={"csrf_token": token, "topics": ["news"], "reminder_days": ""})
    assert saved.status_code == 303
    row = subscriber(app, "ann@example.org")
    assert (Topic(row.topics), row.reminder_days) == (Topic.NEWS, None)


def test_the_console_labels_a_reminder(app: Flask, auth: AuthActions) -> None:
    """The dashboard's digest list names the reminder "Reminder" (no number); its page says what it is."""
    _meeting(app, "smewg-59", date(2026, 12, 8))
    _reader(app, "ann@example.org", 3)
    (digest_id,) = _send_due(app, _local(date(2026, 12, 5), 9))
    staff = auth.login()
    dashboard = staff.get("/staff/").get_data(as_text=True)
    assert f'<a href="/staff/digests/{digest_id}">Reminder</a>' in dashboard
    assert "None</a>" not in dashboard
    page = staff.get(f"/staff/digests/{digest_id}").get_data(as_text=True)
    assert "<h1>Reminder</h1>" in page
    assert "a meeting reminder, not a numbered digest" in page
    assert "Reminder: Meeting smewg-59 starts in 3 days" in page


def test_status_and_cancel_name_a_reminder_as_one(app: Flask, auth: AuthActions, runner: FlaskCliRunner) -> None:
    """`digest status` and the console's cancel question speak of a reminder, not of a numbered digest."""
    _meeting(app, "smewg-59", date(2026, 12, 8))
    _reader(app, "ann@example.org", 3)
    (digest_id,) = _send_due(app, _local(date(2026, 12, 5), 9))
    result = runner.invoke(args=["digest", "status", str(digest_id)])
    assert result.exit_code == 0, result.output
    first_line = result.output.splitlines()[0]
    assert "(meeting reminder: Reminder: Meeting smewg-59 starts in 3 days" in first_line
    assert "Digest None" not in result.output
    page = auth.login().get(f"/staff/digests/{digest_id}?confirm=cancel").get_data(as_text=True)
    assert "(a reminder is not sent again)" in page
    assert "its content goes in the next digest" not in page


def test_ring_sends_a_reminder_made_by_the_service(app: Flask, mailbox: CaughtMail, celery_worker: object) -> None:
    """What ``send_due`` returns is what the task rings: the engine delivers it and marks it sent."""
    _meeting(app, "smewg-59", date(2026, 12, 8))
    _reader(app, "ann@example.org", 3)
    made = _send_due(app, _local(date(2026, 12, 5), 9))
    with app.app_context():
        for digest_id, deliveries in made.items():
            ring(digest_id, deliveries)
    (message,) = mailbox.wait_for(1)
    assert message["Subject"] == "Reminder: Meeting smewg-59 starts in 3 days (8 December 2026)"
    assert "/meetings/smewg-59.ics" in text_of(message)


def test_the_subscribers_console_page_shows_the_reminder(app: Flask, auth: AuthActions) -> None:
    """Staff see each subscriber's reminder choice beside their topics."""
    ann = _reader(app, "ann@example.org", 7)
    bob = _reader(app, "bob@example.org", None)
    staff = auth.login()
    assert "meeting reminder: 1 week before" in staff.get(f"/staff/subscribers/{ann}").get_data(as_text=True)
    assert "meeting reminder: none" in staff.get(f"/staff/subscribers/{bob}").get_data(as_text=True)
