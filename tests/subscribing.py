"""Helpers for the subscription tests: a person's steps, links read off emails, DB snapshots."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from mailer.extensions import db
from mailer.models import ConsentEvent, Subscriber, SubscriberStatus, Topic, utcnow
from mailer.redis_client import get_redis
from mailer.subscriptions import inbox
from tests.conftest import csrf_token, wait_until

LINK = re.compile(r"https?://\S+/subscriptions/(confirm|manage|unsubscribe)/[A-Za-z0-9._-]+")


def subscribe(
    client: FlaskClient, email: str, topics: tuple[str, ...] = Topic.names(), **fields: object
) -> TestResponse:
    """Fill in and submit the subscribe form as a visitor does (GET for the token, then POST)."""
    token = csrf_token(client.get("/subscribe").get_data(as_text=True))
    data = {"csrf_token": token, "email": email, "topics": list(topics), **fields}
    return client.post("/subscribe", data=data)


def text_of(message: EmailMessage) -> str:
    """The decoded plain-text part of ``message``."""
    part = message.get_body(("plain",))
    assert part is not None, "no text part"
    return part.get_content()


def link_in(message: EmailMessage, kind: str) -> str:
    """The path of the ``kind`` link (confirm, manage, unsubscribe) in the text part."""
    for match in LINK.finditer(text_of(message)):
        if match.group(1) == kind:
            return urlsplit(match.group(0)).path
    raise AssertionError(f"no {kind} link in the email")


def settle(app: Flask) -> None:
    """Wait until every subscribe request the web accepted is recorded: drain the inbox here, or let the
    worker that holds it finish (the same ``process_inbox`` a worker runs on its doorbell)."""
    with app.app_context():
        waiting, _, lock = inbox._keys()
        client = get_redis()

        def settled() -> bool:
            inbox.process_inbox()
            return not client.llen(waiting) and not client.exists(lock)

        wait_until(settled)


def snapshot(app: Flask) -> tuple[list[tuple[object, ...]], int]:
    """Every subscriber row and the number of consent events once requests settled: what must not change."""
    settle(app)
    with app.app_context():
        rows = db.session.execute(
            db.select(
                Subscriber.id,
                Subscriber.email,
                Subscriber.name,
                Subscriber.status,
                Subscriber.topics,
                Subscriber.confirm_nonce,
                Subscriber.link_version,
                Subscriber.confirmed_at,
                Subscriber.unsubscribed_at,
            ).order_by(Subscriber.id)
        ).all()
        events = db.session.execute(db.select(db.func.count(ConsentEvent.id))).scalar_one()
        return [tuple(r) for r in rows], events


def add_subscriber(app: Flask, email: str, status: SubscriberStatus, topics: int = 7) -> int:
    """Put a subscriber in the database directly, in ``status``; return its id."""
    with app.app_context():
        sub = Subscriber(email=email, status=status.value, topics=topics)
        if status is SubscriberStatus.PENDING:
            sub.confirm_nonce = "0" * 32
        if status in (SubscriberStatus.CONFIRMED, SubscriberStatus.UNSUBSCRIBED):
            sub.confirmed_at = utcnow()
        if status is SubscriberStatus.UNSUBSCRIBED:
            sub.unsubscribed_at = utcnow()
        db.session.add(sub)
        db.session.commit()
        return sub.id


def subscriber(app: Flask, email: str) -> Subscriber | None:
    """The subscriber row for ``email`` once requests settled (detached, attributes loaded)."""
    settle(app)
    with app.app_context():
        row = db.session.execute(
            db.select(Subscriber).where(db.func.lower(Subscriber.email) == email.lower())
        ).scalar_one_or_none()
        if row is not None:
            db.session.expunge(row)
        return row


def events(app: Flask, email: str) -> list[ConsentEvent]:
    """The consent events of ``email``'s subscriber once requests settled, oldest first (detached)."""
    settle(app)
    with app.app_context():
        rows = list(
            db.session.execute(
                db.select(ConsentEvent)
                .join(Subscriber)
                .where(db.func.lower(Subscriber.email) == email.lower())
                .order_by(ConsentEvent.id)
            ).scalars()
        )
        for row in rows:
            db.session.expunge(row)
        return rows
