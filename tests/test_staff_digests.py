"""The console's digest pages: preview, test copy, send now, schedule, progress and failures."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.content.importer import import_text
from mailer.digests import service
from mailer.extensions import db
from mailer.models import ALL_TOPICS, AuditEntry, Delivery, Digest, Subscriber
from mailer.sending import engine
from tests.conftest import AuthActions, CaughtMail, csrf_token, wait_until
from tests.data import meeting, news_item


@pytest.fixture
def staff(app: Flask, auth: AuthActions) -> FlaskClient:
    """A signed-in editor, with new content and two confirmed subscribers."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting()], "news": [news_item()]}))
        db.session.add_all([Subscriber(email=f"{n}@example.org", topics=ALL_TOPICS, status="confirmed")
                            for n in ("ana", "ben")])  # fmt: skip
        db.session.commit()
    return auth.login()


def _token(client: FlaskClient) -> str:
    """A CSRF token of the signed-in session (the console page always has a form)."""
    return csrf_token(client.get("/staff/").get_data(as_text=True))


def _digests(app: Flask) -> list[Digest]:
    """Every digest."""
    with app.app_context():
        return list(db.session.execute(db.select(Digest)).scalars())


def test_pages_need_sign_in(client: FlaskClient) -> None:
    """Anonymous visitors go to the sign-in page; nothing is created by a forged POST."""
    for path in ("/staff/digests/next", "/staff/digests/next/html", "/staff/digests/1", "/staff/digests/1/progress"):
        assert client.get(path).status_code == 302
    assert client.post("/staff/digests/send").status_code in (302, 400)


def test_preview_shows_the_next_digest(staff: FlaskClient) -> None:
    """Subject, items and the HTML frame; readers' personal links are shown as placeholders."""
    page = staff.get("/staff/digests/next").get_data(as_text=True)
    assert "1 meeting, 1 news item" in page
    assert "58th SMEWG Meeting" in page
    html = staff.get("/staff/digests/next/html")
    assert "Nine projects under way" in html.get_data(as_text=True)
    assert "#your-unsubscribe-link" in html.get_data(as_text=True)
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]


def test_test_copy_goes_to_one_address(app: Flask, staff: FlaskClient, mailbox: CaughtMail,
                                       celery_worker: object) -> None:  # fmt: skip
    """A test copy reaches the given address only; the digest page says so."""
    response = staff.post("/staff/digests/test", data={"csrf_token": _token(staff), "email": "me@example.org"})
    assert response.status_code == 302
    [message] = mailbox.wait_for(1)
    assert message["To"] == "me@example.org"
    assert message["Subject"].startswith("[TEST]")
    page = staff.get(response.headers["Location"]).get_data(as_text=True)
    assert "Test send to me@example.org" in page
    with app.app_context():
        assert db.session.execute(db.select(AuditEntry.actor).where(AuditEntry.action == "digest.test")).scalar() == (
            "editor@example.org"
        )


def test_send_now_then_follow_progress(app: Flask, staff: FlaskClient, mailbox: CaughtMail,
                                       celery_worker: object) -> None:  # fmt: skip
    """Send now queues one delivery per subscriber; progress reaches sent; a second send is refused."""
    response = staff.post("/staff/digests/send", data={"csrf_token": _token(staff)})
    assert response.status_code == 302
    digest_id = int(re.search(r"/staff/digests/(\d+)$", response.headers["Location"]).group(1))
    mailbox.wait_for(2)
    progress = wait_until(lambda: (p := staff.get(f"/staff/digests/{digest_id}/progress").get_json())
                          and p["status"] == "sent" and p)  # fmt: skip
    assert progress["counts"]["sent"] == 2
    assert progress["counts"]["queued"] == 0
    page = staff.get(f"/staff/digests/{digest_id}").get_data(as_text=True)
    assert "2 of 2 done" in page
    assert 'http-equiv="refresh"' not in page
    again = staff.post("/staff/digests/send", data={"csrf_token": _token(staff)})
    assert again.status_code == 409
    assert "nothing new" in again.get_data(as_text=True)
    assert len(_digests(app)) == 1


def test_failures_are_listed_with_the_server_reply(app: Flask, staff: FlaskClient) -> None:
    """Failed and bounced deliveries show their address and SMTP reply."""
    with app.app_context():
        digest = Digest(subject="S", status="sent", until=datetime.now(UTC), content={}, topics=ALL_TOPICS)
        db.session.add(digest)
        db.session.flush()
        db.session.add(
            Delivery(
                digest_id=digest.id,
                subscriber_id=1,
                email="ana@example.org",
                topics=7,
                status="bounced",
                last_smtp_code=550,
                last_smtp_reply="5.1.1 User unknown",
            )
        )
        db.session.commit()  # fmt: skip
        digest_id = digest.id
    page = staff.get(f"/staff/digests/{digest_id}").get_data(as_text=True)
    assert "ana@example.org" in page
    assert "550 5.1.1 User unknown" in page


def test_schedule_creates_a_scheduled_digest(app: Flask, staff: FlaskClient) -> None:
    """A future time makes a scheduled digest; its page refreshes itself until it goes out."""
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = staff.post("/staff/digests/schedule", data={"csrf_token": _token(staff), "at": at})
    assert response.status_code == 302
    [digest] = _digests(app)
    assert digest.status == "scheduled"
    assert digest.scheduled_at.strftime("%Y-%m-%dT%H:%M") == at
    assert 'http-equiv="refresh"' in staff.get(response.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "data", "status", "message"),
    [
        ("/staff/digests/test", {"email": "not an address"}, 400, "Invalid email address"),
        ("/staff/digests/test", {"email": "me@example.org\r\nBcc: x@example.org"}, 400, "Invalid email address"),
        ("/staff/digests/test", {"email": "a" * 300 + "@example.org"}, 400, "Field cannot be longer"),
        ("/staff/digests/send", {}, 409, None),
        ("/staff/digests/test", {}, 400, "This field is required."),
        ("/staff/digests/schedule", {"at": "tomorrow"}, 400, "Not a valid datetime value."),
        ("/staff/digests/schedule", {"at": "2020-01-01T09:00"}, 400, "Choose a time in the future."),
        ("/staff/digests/schedule", {"at": "9" * 5000}, 400, "Not a valid datetime value."),
    ],
)
def test_bad_input_creates_nothing(
    app: Flask, staff: FlaskClient, path: str, data: dict[str, str], status: int, message: str | None
) -> None:
    """Malformed, injected, oversized and past values answer 4xx with the reason; no digest is made."""
    if message is None:  # nothing new to send
        with app.app_context():
            db.session.execute(db.update(Subscriber).values(status="unsubscribed"))
            db.session.add(Digest(subject="S", status="sent", until=datetime.now(UTC), content={}, topics=7))
            db.session.commit()
    before = len(_digests(app))
    response = staff.post(path, data={"csrf_token": _token(staff), **data})
    assert response.status_code == status
    assert (message or "nothing new") in response.get_data(as_text=True)
    assert len(_digests(app)) == before


def test_forged_post_without_token_is_refused(app: Flask, staff: FlaskClient) -> None:
    """Send now without the CSRF token: 400 and no digest."""
    assert staff.post("/staff/digests/send").status_code == 400
    assert _digests(app) == []


def test_unknown_digest_is_404(staff: FlaskClient) -> None:
    """Ids that name no digest, however large, answer 404."""
    for path in ("/staff/digests/999", f"/staff/digests/{2**40}", "/staff/digests/999/progress"):
        assert staff.get(path).status_code == 404


def test_cancel_a_scheduled_digest(app: Flask, staff: FlaskClient) -> None:
    """A scheduled digest can be cancelled once; its content is new again for the next digest."""
    at = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    location = staff.post("/staff/digests/schedule", data={"csrf_token": _token(staff), "at": at}).headers["Location"]
    assert "Nothing is new since the last digest" in staff.get("/staff/digests/next").get_data(as_text=True)
    assert staff.post(location + "/cancel").status_code == 400
    assert staff.post(location + "/cancel", data={"csrf_token": _token(staff)}).status_code == 303
    assert [d.status for d in _digests(app)] == ["cancelled"]
    again = staff.get(staff.post(location + "/cancel", data={"csrf_token": _token(staff)}).headers["Location"])
    assert "is cancelled: it can no longer be cancelled." in again.get_data(as_text=True)
    assert "Send now" in staff.get("/staff/digests/next").get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(db.select(AuditEntry.action).where(AuditEntry.action == "digest.cancel")).scalar()


def test_a_digest_going_out_is_paused_resumed_and_cancelled_from_its_page(
    app: Flask, staff: FlaskClient, mailbox: CaughtMail
) -> None:
    """The page offers what applies: pause while it goes out, resume when paused, retry the failed, cancel."""
    mailbox.reply = lambda sender, to: "554 5.7.1 refused" if to == ["ben@example.org"] else None
    location = staff.post("/staff/digests/send", data={"csrf_token": _token(staff)}).headers["Location"]
    assert "Status: <strong>preparing</strong>" in staff.get(location).get_data(as_text=True)
    with app.app_context():
        service.release_due()  # what the worker does on the doorbell the send rang
    app.extensions["celery"].control.purge()
    page = staff.get(location).get_data(as_text=True)
    assert "Pause" in page
    assert "Cancel this digest" in page
    assert "Resume" not in page
    for bad in ({}, {"csrf_token": "forged"}):
        assert staff.post(location + "/pause", data=bad).status_code == 400
    assert staff.post(location + "/explode", data={"csrf_token": _token(staff)}).status_code == 404
    assert staff.post(location + "/pause", data={"csrf_token": _token(staff)}).status_code == 303
    page = staff.get(location).get_data(as_text=True)
    assert "Paused: paused by editor@example.org" in page
    assert "Resume" in page
    assert [d.status for d in _digests(app)] == ["paused"]
    twice = staff.get(staff.post(location + "/pause", data={"csrf_token": _token(staff)}).headers["Location"])
    assert "only a digest going out can be paused" in twice.get_data(as_text=True)
    staff.post(location + "/resume", data={"csrf_token": _token(staff)})
    digest_id = _digests(app)[0].id
    with app.app_context():
        assert engine.send_batch(digest_id, app.extensions["mailer.variants"]).outcomes == {"sent": 1, "failed": 1}
    page = staff.get(location).get_data(as_text=True)
    assert "Retry the 1 failed" in page
    assert "554" in page
    assert "Cancel this digest" not in page
    mailbox.reply = None
    staff.post(location + "/retry-failed", data={"csrf_token": _token(staff)})
    app.extensions["celery"].control.purge()
    assert staff.post(location + "/cancel", data={"csrf_token": _token(staff)}).status_code == 303
    with app.app_context():
        assert {d.status for d in db.session.execute(db.select(Delivery)).scalars()} == {"sent", "cancelled"}
        actions = db.session.execute(db.select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert actions[-4:] == ["digest.pause", "digest.resume", "digest.retry_failed", "digest.cancel"]
    assert len(mailbox.envelopes) == 1
