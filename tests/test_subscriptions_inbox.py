"""The subscribe inbox: the web hands requests to the worker through Redis; none is lost, none recorded twice."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient

from mailer.models import SubscriberStatus
from mailer.redis_client import get_redis
from mailer.subscriptions import inbox
from mailer.subscriptions.service import record_requests
from tests.conftest import CaughtMail, wait_until
from tests.subscribing import events, settle, snapshot, subscriber

URL = "/api/v1/subscriptions"


def post(client: FlaskClient, email: str, ip: str = "192.0.2.10") -> int:
    """Subscribe ``email`` through the API; the status code."""
    return client.post(URL, json={"email": email}, environ_base={"REMOTE_ADDR": ip}).status_code


def waiting(app: Flask) -> int:
    """How many requests wait in the inbox."""
    with app.app_context():
        return get_redis().llen(inbox._keys()[0])


def test_a_burst_is_recorded_in_batches_with_each_request_as_made(app: Flask, client: FlaskClient) -> None:
    """250 requests from 250 clients wait in the inbox, then one drain records them all, each with its own
    client IP and the time it was made (not the time it was recorded)."""
    app.config["RATELIMIT_CONFIRM_DOMAIN"] = "1000 per hour"
    before = datetime.now(UTC)
    statuses = [
        post(client, f"burst{n}@example.org", f"192.0.2.{n}" if n < 250 else "198.51.100.1") for n in range(250)
    ]
    assert statuses == [202] * 250
    made = datetime.now(UTC)
    assert waiting(app) == 250
    time.sleep(1.1)
    with app.app_context():
        assert inbox.process_inbox() == 250
    assert waiting(app) == 0
    rows, consent_events = snapshot(app)
    assert len(rows) == 250
    assert consent_events == 250
    assert {row[3] for row in rows} == {SubscriberStatus.PENDING.value}
    [event] = events(app, "burst7@example.org")
    assert event.ip == "192.0.2.7"
    assert event.source == "api"
    assert before <= event.occurred_at.replace(tzinfo=UTC) <= made


def test_requests_recorded_before_a_crash_leave_one_subscriber_each(app: Flask, client: FlaskClient) -> None:
    """A worker that recorded a batch and died before removing it from the inbox: the next drain records the
    same requests again (the consent log shows each request twice), and each address is one pending subscriber."""
    for name in ("ann", "bob", "cy"):
        assert post(client, f"{name}@example.org") == 202
    with app.app_context():
        raw = get_redis().lrange(inbox._keys()[0], 0, -1)
        record_requests([inbox._received(item) for item in raw])  # recorded, then "killed" before LTRIM
        assert inbox.process_inbox() == 3
    rows, consent_events = snapshot(app)
    assert [row[1] for row in rows] == ["ann@example.org", "bob@example.org", "cy@example.org"]
    assert consent_events == 6
    assert subscriber(app, "bob@example.org").status == SubscriberStatus.PENDING.value


def test_an_unreadable_entry_is_skipped_and_the_rest_recorded(app: Flask, client: FlaskClient) -> None:
    """Garbage in the inbox (a bug, a hand edit) does not hold up the requests behind it."""
    with app.app_context():
        get_redis().rpush(inbox._keys()[0], b"{not json", b'{"email": 1}')
    assert post(client, "after@example.org") == 202
    settle(app)
    assert waiting(app) == 0
    assert subscriber(app, "after@example.org").status == SubscriberStatus.PENDING.value


def test_the_doorbell_gets_a_worker_to_record_and_email(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """With a real worker running, an accepted request is recorded and answered without anyone draining by hand."""
    assert post(client, "rung@example.org") == 202
    [message] = mailbox.wait_for(1)
    assert message["To"] == "rung@example.org"
    assert waiting(app) == 0


def test_a_lost_doorbell_is_covered_by_beat(app: Flask, client: FlaskClient, celery_worker: object) -> None:
    """The doorbell was set but its task never ran: beat's periodic drain (same task) records the request."""
    with app.app_context():
        get_redis().set(inbox._keys()[1], "1", px=60_000)  # someone else rang, and the task was lost
    assert post(client, "late@example.org") == 202
    time.sleep(0.3)
    assert waiting(app) == 1
    schedule = app.extensions["celery"].conf.beat_schedule
    assert any(entry["task"] == inbox.PROCESS_TASK for entry in schedule.values())
    app.extensions["celery"].send_task(inbox.PROCESS_TASK)  # what beat sends every SWEEP_INTERVAL
    wait_until(lambda: waiting(app) == 0)
    assert subscriber(app, "late@example.org").status == SubscriberStatus.PENDING.value
