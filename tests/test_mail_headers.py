"""The headers that tell mailbox providers what a message is: list mail (digests), test copies, confirmations."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import dkim
import pytest
from flask import Flask

from mailer.digests.service import variant_factory
from mailer.extensions import db
from mailer.mail import MessageFactory, RenderedEmail, make_message_id
from mailer.mail.message import ListMail
from mailer.models import ALL_TOPICS, Digest, Subscriber, SubscriberStatus, Topic
from mailer.subscriptions.emails import send_already_subscribed, send_confirmation
from tests.conftest import CaughtMail
from tests.data import dkim_key, meeting, news_item
from tests.subscribing import add_subscriber

BASE_URL = "https://news.example.org"
SELECTOR, DOMAIN = b"mailer", b"example.org"
#: Gmail's recommended Feedback-ID: four colon-separated parts, the last the sender's id.
FEEDBACK_ID = re.compile(r"[A-Za-z0-9._-]+:[A-Za-z0-9._-]+:[A-Za-z0-9._-]+:mailer")
LIST_HEADERS = ("Precedence", "List-Archive", "Archived-At", "List-Help", "List-Subscribe", "List-Post", "Feedback-ID")


def _digest(app: Flask, is_test: bool = False) -> int:
    """A digest going out (or a test copy) about meetings and news; its id."""
    with app.app_context():
        digest = Digest(
            subject="SMEWG News — March 2024", status="queued" if is_test else "sending", is_test=is_test,
            test_to="staff@example.org" if is_test else None, until=datetime.now(UTC),
            content={"meetings": [meeting(summary=None, link=None, demo=False)], "news": [news_item(demo=False)]},
            topics=ALL_TOPICS, number=None if is_test else 1,
        )  # fmt: skip
        db.session.add(digest)
        db.session.commit()
        return digest.id


def _built(app: Flask, digest_id: int, topics: int = ALL_TOPICS) -> bytes:
    """One recipient's message of the digest's ``topics`` variant, as the send engine builds it."""
    with app.app_context():
        factory = variant_factory(digest_id, topics)
    links = {"preferences_url": BASE_URL + "/p", "unsubscribe_url": BASE_URL + "/u"}
    return factory.build(
        to="ann@example.com", message_id=make_message_id(factory.domain), personal=links,
        list_unsubscribe=f"<{links['unsubscribe_url']}>",
    )  # fmt: skip


def _parse(data: bytes) -> EmailMessage:
    """The message as a mail client reads it."""
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


@pytest.fixture
def https_app(app: Flask) -> Flask:
    """The app with an https BASE_URL and LIST_ID, as production runs it."""
    app.config.update(BASE_URL=BASE_URL, LIST_ID="SMEWG News <news.smewg.example.org>")
    return app


def test_a_digest_is_list_mail(https_app: Flask) -> None:
    """Precedence, Auto-Submitted, the archive, help and subscribe pages, List-Post: NO, Feedback-ID."""
    digest_id = _digest(https_app)
    message = _parse(_built(https_app, digest_id, Topic.MEETINGS | Topic.NEWS))
    assert message["Precedence"] == "bulk"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Archive"] == f"<{BASE_URL}/archive/>"
    assert message["Archived-At"] == f"<{BASE_URL}/archive/{digest_id}>"
    assert message["List-Help"] == f"<{BASE_URL}/subscribe>"
    assert message["List-Subscribe"] == f"<{BASE_URL}/subscribe>"
    assert message["List-Post"] == "NO"
    assert message["Feedback-ID"] == f"{digest_id}:meetings-news:news.smewg.example.org:mailer"
    assert FEEDBACK_ID.fullmatch(message["Feedback-ID"])
    assert message["List-Id"] == "SMEWG News <news.smewg.example.org>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert all(len(message.get_all(name)) == 1 for name in LIST_HEADERS)


def test_each_topic_variant_has_its_own_feedback_id(https_app: Flask) -> None:
    """Gmail reports complaints per Feedback-ID: per digest and topic variant, never per recipient."""
    digest_id = _digest(https_app)
    ids = {topics: _parse(_built(https_app, digest_id, topics))["Feedback-ID"] for topics in (1, 4, 5)}
    assert ids == {
        1: f"{digest_id}:meetings:news.smewg.example.org:mailer",
        4: f"{digest_id}:news:news.smewg.example.org:mailer",
        5: f"{digest_id}:meetings-news:news.smewg.example.org:mailer",
    }


def test_a_test_copy_names_no_archive_page(https_app: Flask) -> None:
    """A test copy's archive page needs a token: no Archived-At; its Feedback-ID says "test"; the rest as sent."""
    digest_id = _digest(https_app, is_test=True)
    message = _parse(_built(https_app, digest_id))
    assert message["Archived-At"] is None
    assert message["Feedback-ID"] == f"{digest_id}:test:news.smewg.example.org:mailer"
    assert message["Precedence"] == "bulk"
    assert message["List-Archive"] == f"<{BASE_URL}/archive/>"
    assert "?t=" not in str(message).partition("\n\n")[0], "no token in any header"


def test_feedback_id_parts_are_header_safe() -> None:
    """Colons, spaces and non-ASCII in a part become '-', so the four parts stay four."""
    list_mail = ListMail(
        archive_url=BASE_URL + "/archive/", help_url=BASE_URL + "/subscribe", subscribe_url=BASE_URL + "/subscribe",
        campaign="7:x", variant="réunions et nouvelles",
    )  # fmt: skip
    factory = MessageFactory(
        RenderedEmail(text="Hello", html="<p>Hello</p>"), subject="News", sender="News <news@example.org>",
        list_id="Nouvelles <nouvelles:é.example.org>", list_mail=list_mail,
    )  # fmt: skip
    message = _parse(factory.build(to="ann@example.com", message_id=make_message_id("example.org")))
    assert message["Feedback-ID"] == "7-x:r-unions-et-nouvelles:nouvelles-.example.org:mailer"
    assert FEEDBACK_ID.fullmatch(message["Feedback-ID"])


@pytest.mark.parametrize("url", ["https://news.example.org/a b", "https://news.example.org/é", "https://x/\r\nBcc: y"])
def test_list_urls_must_be_one_ascii_line(url: str) -> None:
    """A URL that cannot stand in ``<...>`` in a header is refused when the factory is made."""
    list_mail = ListMail(archive_url=url, help_url=url, subscribe_url=url, campaign="1", variant="news")
    with pytest.raises(ValueError):
        MessageFactory(RenderedEmail(text="", html=""), subject="News", sender="n@example.org", list_mail=list_mail)


def test_dkim_covers_the_list_headers(https_app: Flask) -> None:
    """The digest's signature verifies and signs every List-* header, Archived-At and Feedback-ID (twice)."""
    key = dkim_key()
    https_app.config.update(DKIM_SELECTOR="mailer", DKIM_DOMAIN="example.org", DKIM_KEY=key.pem)
    data = _built(https_app, _digest(https_app))
    assert dkim.verify(data, dnsfunc=key.dns(SELECTOR, DOMAIN))
    signature = _parse(data)["DKIM-Signature"]
    signed = re.search(r"h=([^;]+)", re.sub(r"\s", "", signature))[1].split(":")
    for name in ("list-id", "list-unsubscribe", "list-unsubscribe-post", "list-archive", "archived-at",
                 "list-help", "list-subscribe", "list-post", "feedback-id"):  # fmt: skip
        assert signed.count(name) == 2, name
    moved = data.replace(f"Archived-At: <{BASE_URL}/archive/".encode(), b"Archived-At: <https://evil.example/", 1)
    assert not dkim.verify(moved, dnsfunc=key.dns(SELECTOR, DOMAIN))


@pytest.mark.parametrize("send", [send_confirmation, send_already_subscribed])
def test_confirmations_are_auto_submitted_not_bulk(https_app: Flask, mailbox: CaughtMail, send: object) -> None:
    """One message that the recipient asked for: Auto-Submitted, but none of a digest's list-mail headers."""
    status = SubscriberStatus.PENDING if send is send_confirmation else SubscriberStatus.CONFIRMED
    sid = add_subscriber(https_app, "ana@example.org", status)
    with https_app.app_context():
        send(db.session.get(Subscriber, sid))  # type: ignore[operator]
    (message,) = mailbox.wait_for(1)
    assert message["Auto-Submitted"] == "auto-generated"
    assert all(message[name] is None for name in LIST_HEADERS)
    assert message["List-Unsubscribe"].startswith(f"<{BASE_URL}/subscriptions/unsubscribe/")
