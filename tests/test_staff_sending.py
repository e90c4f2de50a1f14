"""Sending with confidence: numbers readers see, the confirmation step, the controls, and local times."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from mailer.digests import service
from mailer.extensions import db
from mailer.models import ALL_TOPICS, Delivery, Digest, Subscriber, Topic
from mailer.tokens import make_token
from tests.conftest import csrf_token
from tests.test_staff_digests import _token
from tests.test_staff_digests import staff as signed_in_staff

#: The same fixture as the console's digest tests: a signed-in editor, new content and two readers.
staff = signed_in_staff


def _digests(app: Flask) -> list[Digest]:
    """Every digest, oldest first."""
    with app.app_context():
        return list(db.session.execute(db.select(Digest).order_by(Digest.id)).scalars())


def _release(app: Flask) -> None:
    """What the worker does on the doorbell: snapshot deliveries; then forget the queued tasks."""
    with app.app_context():
        service.release_due()
    app.extensions["celery"].control.purge()


def test_a_test_send_takes_no_number_and_the_first_digest_is_number_1(app: Flask, staff: FlaskClient) -> None:
    """A test copy is listed apart and numbered never; the first real digest is 1 everywhere readers look."""
    sent = staff.post("/staff/digests/test", data={"csrf_token": _token(staff), "email": "me@example.org"})
    page = staff.get(sent.headers["Location"]).get_data(as_text=True)
    assert "Test copy sent to me@example.org" in page
    assert "Digest 1 created" not in page
    assert "/archive/" not in page
    location = staff.post("/staff/digests/send", data={"csrf_token": _token(staff)}).headers["Location"]
    assert "Digest 1 created" in staff.get(location).get_data(as_text=True)
    test, real = _digests(app)
    assert (test.is_test, test.number, real.number) == (True, None, 1)
    _release(app)
    assert staff.get("/archive/1").status_code == 200
    assert 'href="/archive/1"' in staff.get(location).get_data(as_text=True)
    with app.app_context():
        digest = db.session.get(Digest, real.id)
        assert service.online_url(digest).endswith("/archive/1")
        assert service._list_mail(digest, ALL_TOPICS).archived_at.endswith("/archive/1")
        test_url = service.online_url(db.session.get(Digest, test.id))
        real_token = make_token("archive", real.id)
    assert re.search(rf"/archive/test/{test.id}\?t=", test_url)
    query = urlsplit(test_url).query
    assert staff.get(f"/archive/test/{test.id}?{query}").status_code == 200
    assert staff.get(f"/archive/test/{test.id}").status_code == 404
    old_link = staff.get(f"/archive/{test.id}?{query}")  # as test copies linked before
    assert (old_link.status_code, old_link.headers["Location"]) == (301, f"/archive/test/{test.id}?{query}")
    assert staff.get(f"/archive/test/{real.id}?t={real_token}").status_code == 404
    dashboard = staff.get("/staff/").get_data(as_text=True)
    assert "Test send to me@example.org" in dashboard
    assert "(test to" not in dashboard


def test_scheduled_and_cancelled_digests_link_to_no_archive_page(app: Flask, staff: FlaskClient) -> None:
    """The console links /archive/<n> only where the page exists."""
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    location = staff.post("/staff/digests/schedule", data={"csrf_token": _token(staff), "at": at}).headers["Location"]
    assert "/archive/1" not in staff.get(location).get_data(as_text=True)
    assert staff.get("/archive/1").status_code == 404
    staff.post(location + "/cancel", data={"csrf_token": _token(staff)})
    assert "/archive/1" not in staff.get(location).get_data(as_text=True)
    assert staff.get("/archive/1").status_code == 404


def test_numbers_are_unique_in_the_database(app: Flask) -> None:
    """Should two creations ever race past the lock, the unique index refuses the second number."""
    with app.app_context():
        now = datetime.now(UTC)
        db.session.add_all([Digest(number=1, subject="S", until=now, content={}, topics=1) for _ in range(2)])
        with pytest.raises(IntegrityError):
            db.session.commit()


def test_send_now_asks_to_confirm_with_the_count_of_each_variant(app: Flask, staff: FlaskClient) -> None:
    """The button and the confirmation page count confirmed subscribers by the topics they will get."""
    with app.app_context():
        people = [
            ("cy", Topic.MEETINGS, "confirmed"),
            ("di", Topic.PROJECTS, "confirmed"),  # nothing new for projects: not reached
            ("ed", Topic.NEWS | Topic.PROJECTS, "confirmed"),
            ("fa", Topic.MEETINGS, "unsubscribed"),
            ("gu", Topic.NEWS, "pending"),
        ]
        db.session.add_all(
            [Subscriber(email=f"{n}@example.org", topics=int(t), status=s) for n, t, s in people]
        )  # fmt: skip
        db.session.commit()
    preview = staff.get("/staff/digests/next").get_data(as_text=True)
    assert "Send now to 4 subscribers" in preview
    confirm = staff.get("/staff/digests/send").get_data(as_text=True)
    assert "<tr><td>Meetings</td><td>1</td></tr>" in confirm
    assert "<tr><td>News</td><td>1</td></tr>" in confirm
    assert "<tr><td>Meetings + News</td><td>2</td></tr>" in confirm
    assert "Yes, send to 4 subscribers" in confirm
    assert _digests(app) == []
    staff.post("/staff/digests/send", data={"csrf_token": csrf_token(confirm)})
    _release(app)
    with app.app_context():
        assert db.session.execute(db.select(db.func.count()).select_from(Delivery)).scalar() == 4


def test_send_without_token_or_replayed_makes_one_digest(app: Flask, staff: FlaskClient) -> None:
    """No CSRF token: 400; the same confirmed POST twice: the second finds nothing new (409)."""
    assert staff.post("/staff/digests/send").status_code == 400
    assert staff.post("/staff/digests/send", data={"csrf_token": "forged"}).status_code == 400
    assert _digests(app) == []
    form = {"csrf_token": csrf_token(staff.get("/staff/digests/send").get_data(as_text=True))}
    assert staff.post("/staff/digests/send", data=form).status_code == 302
    replay = staff.post("/staff/digests/send", data=form)
    assert replay.status_code == 409
    assert "nothing new" in replay.get_data(as_text=True)
    _release(app)
    assert staff.post("/staff/digests/send", data=form).status_code == 409
    assert len(_digests(app)) == 1
    assert staff.get("/staff/digests/send").status_code == 302  # nothing to confirm


def test_controls_from_the_page_go_through_the_engine(app: Flask, staff: FlaskClient) -> None:
    """Pause shows its reason and resume clears it; cancel asks first; retry queues the failed again."""
    location = staff.post("/staff/digests/send", data={"csrf_token": _token(staff)}).headers["Location"]
    _release(app)
    with app.app_context():
        db.session.execute(db.update(Digest).values(status="paused", paused_reason="SMTP login refused (535)"))
        db.session.execute(db.update(Delivery).where(Delivery.email == "ben@example.org").values(status="failed"))
        db.session.commit()
    page = staff.get(location).get_data(as_text=True)
    assert "Paused: SMTP login refused (535)" in page
    assert staff.post(location + "/retry-failed", data={"csrf_token": _token(staff)}).status_code == 303
    assert staff.post(location + "/resume", data={"csrf_token": _token(staff)}).status_code == 303
    app.extensions["celery"].control.purge()
    [digest] = _digests(app)
    assert (digest.status, digest.paused_reason) == ("queued", None)
    with app.app_context():
        assert service.delivery_counts(digest.id) == {"queued": 2}
    page = staff.get(location).get_data(as_text=True)
    assert "Yes, cancel" not in page
    asked = staff.get(location + "?confirm=cancel").get_data(as_text=True)
    assert "Cancel Digest 1? The 2 deliveries" in asked
    assert "Yes, cancel Digest 1" in asked
    assert staff.post(location + "/cancel", data={"csrf_token": csrf_token(asked)}).status_code == 303
    [digest] = _digests(app)
    assert digest.status == "cancelled"
    refused = staff.get(staff.post(location + "/pause", data={"csrf_token": _token(staff)}).headers["Location"])
    assert "Digest 1 is cancelled: only a digest going out can be paused." in refused.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/staff/digests/abc"),
        ("get", "/staff/digests/-1"),
        ("get", "/staff/digests/0"),
        ("get", f"/staff/digests/{2**40}?confirm=cancel"),
        ("post", "/staff/digests/1x/pause"),
        ("post", "/staff/digests/0/resume"),
        ("post", f"/staff/digests/{2**63}/cancel"),
        ("post", "/staff/digests/999/retry-failed"),
        ("get", "/archive/test/abc"),
        ("get", f"/archive/test/{2**40}?t=x"),
    ],
)
def test_malformed_or_unknown_ids_are_404(staff: FlaskClient, method: str, path: str) -> None:
    """Ids that are not numbers, too large or unknown answer 404 (after the form check, with a token)."""
    assert getattr(staff, method)(path, data={"csrf_token": _token(staff)}).status_code == 404


def test_time_to_finish_uses_send_rate_or_the_last_minute(app: Flask, staff: FlaskClient) -> None:
    """Remaining deliveries over SEND_RATE when set, else over what was sent in the last minute."""
    location = staff.post("/staff/digests/send", data={"csrf_token": _token(staff)}).headers["Location"]
    _release(app)
    assert "to go" not in staff.get(location).get_data(as_text=True)  # nothing sent yet: unknown
    with app.app_context():
        db.session.execute(
            db.update(Delivery)
            .where(Delivery.email == "ana@example.org")
            .values(status="sent", sent_at=datetime.now(UTC) - timedelta(seconds=10))
        )
        db.session.commit()
    page = staff.get(location).get_data(as_text=True)
    assert "About a minute to go, at the last minute&#39;s pace, 1 a minute." in page
    app.config["SEND_RATE"] = 0.0001
    page = staff.get(location).get_data(as_text=True)
    assert "About 2 hours 47 minutes to go, at SEND_RATE, 0.0001 a second." in page


@pytest.mark.parametrize(
    ("zone", "local", "utc"),
    [
        ("Asia/Singapore", "2027-01-15T09:00", datetime(2027, 1, 15, 1, 0, tzinfo=UTC)),
        ("Europe/Paris", "2027-03-27T09:00", datetime(2027, 3, 27, 8, 0, tzinfo=UTC)),  # CET, the day before
        ("Europe/Paris", "2027-03-28T09:00", datetime(2027, 3, 28, 7, 0, tzinfo=UTC)),  # CEST, the day of
        ("Europe/Paris", "2027-10-31T03:30", datetime(2027, 10, 31, 2, 30, tzinfo=UTC)),  # CET again
    ],
)
def test_schedule_reads_the_organisations_local_time(
    app: Flask, staff: FlaskClient, zone: str, local: str, utc: datetime
) -> None:
    """The form names the zone; the local time is stored as UTC and shown back in the zone."""
    app.config["ORG_TIMEZONE"] = zone
    form = staff.get("/staff/digests/next").get_data(as_text=True)
    assert re.search(rf"Send at, {zone} \(UTC\+0[0-9]:00\)", form)
    response = staff.post("/staff/digests/schedule", data={"csrf_token": _token(staff), "at": local})
    assert response.status_code == 302
    [digest] = _digests(app)
    assert digest.scheduled_at == utc
    page = staff.get(response.headers["Location"]).get_data(as_text=True)
    wall = datetime.fromisoformat(local)
    assert f"scheduled for {wall.day} {wall:%B %Y %H:%M} " in page


@pytest.mark.parametrize(
    ("zone", "local", "message"),
    [
        ("Europe/Paris", "2027-03-28T02:30", "28 March 2027 02:30 in Europe/Paris does not exist"),
        ("Europe/Paris", "2027-10-31T02:30", "31 October 2027 02:30 in Europe/Paris happens twice"),
        ("Asia/Singapore", "2026-01-01T09:00", "Choose a time in the future."),
    ],
)
def test_a_time_that_is_past_or_not_on_the_clock_schedules_nothing(
    app: Flask, staff: FlaskClient, zone: str, local: str, message: str
) -> None:
    """A local time skipped or repeated by a clock change, or in the past: 400 with the reason."""
    app.config["ORG_TIMEZONE"] = zone
    response = staff.post("/staff/digests/schedule", data={"csrf_token": _token(staff), "at": local})
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _digests(app) == []
