"""The subscription lifecycle as a person goes through it, with a real worker, Redis and SMTP server."""

from __future__ import annotations

import os
import time

import dkim
import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner

from mailer.bounces.verp import Tag, read_verp
from mailer.config import load_config
from mailer.extensions import db
from mailer.models import AuditEntry, Subscriber, SubscriberStatus, Topic
from mailer.subscriptions.emails import send_confirmation
from tests.conftest import CaughtMail, csrf_token, wait_until
from tests.data import dkim_key
from tests.subscribing import add_subscriber, events, link_in, settle, snapshot, subscribe, subscriber, text_of


def test_whole_lifecycle(app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object) -> None:
    """Subscribe, confirm from the email, change topics, unsubscribe, undo, one-click: each step as seen."""
    answer = subscribe(client, "Ann.Lee@Example.ORG", topics=("meetings", "projects"), name="Ann Lee")
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/subscribe/check-inbox"
    assert "Check your inbox" in client.get(answer.headers["Location"]).get_data(as_text=True)
    assert subscriber(app, "ann.lee@example.org").status == "pending"

    (message,) = mailbox.wait_for(1)
    assert message["To"] == "Ann.Lee@example.org"
    assert "confirm" in message["Subject"].lower()
    assert message.is_multipart()
    assert message.get_body(("html",)) is not None
    assert message["Message-ID"]
    assert message["List-Id"]
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:5000/subscriptions/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The envelope sender is BOUNCE_ADDRESS's own variant for this subscriber (VERP), so a bounce names them.
    envelope, recipients = mailbox.envelopes[0]
    assert recipients == ["Ann.Lee@example.org"]
    with app.app_context():
        assert read_verp(envelope) == Tag("s", subscriber(app, "ann.lee@example.org").id)
    assert "Hello Ann Lee" in text_of(message)
    assert "7 days" in text_of(message)
    assert "Past issues, to read in your browser: http://127.0.0.1:5000/archive/" in text_of(message)

    # The link opens a page; only its button confirms.
    confirm = link_in(message, "confirm")
    before = snapshot(app)
    page = client.get(confirm)
    assert page.status_code == 200
    assert "Ann.Lee@example.org" in page.get_data(as_text=True)
    assert snapshot(app) == before
    done = client.post(confirm, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    assert done.status_code == 200
    assert "You are subscribed" in done.get_data(as_text=True)
    assert subscriber(app, "ann.lee@example.org").status == "confirmed"

    # Preferences from the link in the email: change topics and name.
    manage = link_in(message, "manage")
    page = client.get(manage)
    assert page.status_code == 200
    assert 'value="Ann Lee"' in page.get_data(as_text=True)
    token = csrf_token(page.get_data(as_text=True))
    saved = client.post(manage, data={"csrf_token": token, "name": "Ann B. Lee", "topics": ["news"]})
    assert saved.status_code == 303
    assert "Your preferences are saved." in client.get(saved.headers["Location"]).get_data(as_text=True)
    row = subscriber(app, "ann.lee@example.org")
    assert (row.name, Topic(row.topics).to_names()) == ("Ann B. Lee", ["news"])

    # Choosing no topic is refused with the way out: unsubscribe instead.
    before = snapshot(app)
    refused = client.post(manage, data={"csrf_token": token, "name": "Ann"})
    assert refused.status_code == 400
    assert "Choose at least one topic" in refused.get_data(as_text=True)
    assert "unsubscribe instead" in refused.get_data(as_text=True)
    assert snapshot(app) == before

    # Unsubscribe from the link: the page's button, then undo.
    unsubscribe = link_in(message, "unsubscribe")
    page = client.get(unsubscribe)
    assert page.status_code == 200
    assert "Stop all emails" in page.get_data(as_text=True)
    assert snapshot(app) == before
    gone = client.post(unsubscribe)
    assert gone.status_code == 200
    assert "You are unsubscribed" in gone.get_data(as_text=True)
    row = subscriber(app, "ann.lee@example.org")
    assert row.status == "unsubscribed"
    assert row.unsubscribed_at is not None
    undo = client.post(
        unsubscribe.replace("/unsubscribe/", "/resubscribe/"),
        data={"csrf_token": csrf_token(gone.get_data(as_text=True))},
    )
    assert undo.status_code == 200
    assert "You are subscribed again" in undo.get_data(as_text=True)
    assert subscriber(app, "ann.lee@example.org").status == "confirmed"

    # RFC 8058 one-click from a mail client: no cookies, no CSRF token, 200 without redirect; both encodings.
    mail_client = app.test_client(use_cookies=False)
    for encoding in ("application/x-www-form-urlencoded", "multipart/form-data"):
        answer = mail_client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, content_type=encoding)
        assert answer.status_code == 200
        assert "Location" not in answer.headers
        assert subscriber(app, "ann.lee@example.org").status == "unsubscribed"
        client.post(
            unsubscribe.replace("/unsubscribe/", "/resubscribe/"),
            data={"csrf_token": csrf_token(client.get(unsubscribe).get_data(as_text=True))},
        )
    again = mail_client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200
    assert mail_client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200

    log = [(e.event, e.source) for e in events(app, "ann.lee@example.org")]
    assert log == [
        ("subscribe", "form"),
        ("confirm", "email"),
        ("preferences", "email"),
        ("unsubscribe", "email"),
        ("resubscribe", "email"),
        ("unsubscribe", "one-click"),
        ("resubscribe", "email"),
        ("unsubscribe", "one-click"),
        ("resubscribe", "email"),
        ("unsubscribe", "one-click"),
    ]
    first = events(app, "ann.lee@example.org")[0]
    assert first.ip == "127.0.0.1"
    assert first.user_agent.startswith("Werkzeug/")
    assert first.consent_version == app.config["CONSENT_VERSION"]
    assert first.detail["topics"] == ["meetings", "projects"]

    # Subscribing again after unsubscribing needs a fresh opt-in.
    assert subscribe(client, "ann.lee@example.org").status_code == 303
    fresh = mailbox.wait_for(2)[1]
    assert "confirm" in fresh["Subject"].lower()
    assert subscriber(app, "ann.lee@example.org").status == "pending"
    assert len(mailbox.messages) == 2


def test_answer_is_identical_whatever_the_address(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """New, pending, confirmed, unsubscribed and suppressed addresses get the same answer; the mail differs."""
    for status in (
        SubscriberStatus.SUPPRESSED,
        SubscriberStatus.PENDING,
        SubscriberStatus.CONFIRMED,
        SubscriberStatus.UNSUBSCRIBED,
    ):
        add_subscriber(app, f"{status.value}@example.org", status)
    answers = []
    for name in ("suppressed", "pending", "confirmed", "unsubscribed", "new"):
        response = subscribe(client, f"{name}@example.org")
        headers = sorted((k, v) for k, v in response.headers.items() if k != "Set-Cookie")
        answers.append((response.status_code, headers, response.get_data()))
    assert all(answer == answers[0] for answer in answers)

    mailbox.wait_for(4)
    subjects = {m["To"]: m["Subject"] for m in mailbox.messages}
    assert "already subscribed" in subjects.pop("confirmed@example.org")
    assert set(subjects) == {"pending@example.org", "unsubscribed@example.org", "new@example.org"}
    assert all("confirm" in s.lower() for s in subjects.values())
    already = mailbox.to("confirmed@example.org")[0]
    assert "/subscriptions/manage/" in text_of(already)
    assert subscriber(app, "confirmed@example.org").status == "confirmed"
    assert subscriber(app, "suppressed@example.org").status == "suppressed"
    assert subscriber(app, "unsubscribed@example.org").status == "pending"
    # The request is recorded like any other (it is not consent); the suppression stands.
    (event,) = events(app, "suppressed@example.org")
    assert (event.event, event.detail["previous_status"]) == ("subscribe", "suppressed")


def test_honeypot_gets_the_same_answer_and_nothing_happens(app: Flask, client: FlaskClient) -> None:
    """A bot that fills in the hidden field is told to check its inbox; nothing is stored or sent."""
    human = subscribe(client, "person@example.org")
    before = snapshot(app)
    bot = subscribe(client, "bot@example.org", website="http://spam.example.com")
    assert (bot.status_code, bot.headers["Location"]) == (human.status_code, human.headers["Location"])
    assert bot.get_data() == human.get_data()
    assert snapshot(app) == before


def test_confirmation_link_works_once(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """A replayed confirmation link and one replaced by a newer email get a friendly 410 page."""
    subscribe(client, "once@example.org")
    first = link_in(mailbox.wait_for(1)[0], "confirm")
    subscribe(client, "once@example.org")
    second = link_in(mailbox.wait_for(2)[1], "confirm")
    token = csrf_token(client.get("/subscribe").get_data(as_text=True))
    replaced = client.post(first, data={"csrf_token": token})
    assert replaced.status_code == 410
    assert "already been used" in replaced.get_data(as_text=True)
    assert client.post(second, data={"csrf_token": token}).status_code == 200
    before = snapshot(app)
    for attempt in (client.get(second), client.post(second, data={"csrf_token": token})):
        assert attempt.status_code == 410
        assert "already been used" in attempt.get_data(as_text=True)
    assert snapshot(app) == before
    assert [e.event for e in events(app, "once@example.org")] == ["subscribe", "subscribe", "confirm"]


def _links(app: Flask, subscriber_id: int, nonce: str, version: int = 1) -> dict[str, str]:
    """The three links of a subscriber, as paths."""
    from mailer.subscriptions.links import confirm_url, preferences_url, unsubscribe_url

    with app.test_request_context():
        urls = {
            "confirm": confirm_url(subscriber_id, nonce),
            "manage": preferences_url(subscriber_id, version),
            "unsubscribe": unsubscribe_url(subscriber_id, version),
        }
    return {k: v.removeprefix(app.config["BASE_URL"]) for k, v in urls.items()}


def test_bad_links_get_a_friendly_page_and_change_nothing(app: Flask, client: FlaskClient) -> None:
    """Tampered, truncated, wrong-purpose, oversized, unknown and revoked links: 404/410 pages, never 500."""
    sid = add_subscriber(app, "links@example.org", SubscriberStatus.PENDING)
    links = _links(app, sid, "0" * 32)
    token = csrf_token(client.get("/subscribe").get_data(as_text=True))
    tampered = {k: v[:-3] + ("AAA" if not v.endswith("AAA") else "BBB") for k, v in links.items()}
    wrong_purpose = {
        "confirm": links["confirm"].replace("/confirm/", "/unsubscribe/"),
        "manage": links["manage"].replace("/manage/", "/confirm/"),
        "unsubscribe": links["unsubscribe"].replace("/unsubscribe/", "/manage/"),
    }
    bad = [
        *tampered.values(),
        *wrong_purpose.values(),
        links["manage"][:-10],
        "/subscriptions/confirm/" + "A" * 600,
        "/subscriptions/manage/not-a-token",
        "/subscriptions/resubscribe/" + links["manage"].rsplit("/", 1)[1],
    ]
    unknown = _links(app, sid + 1000, "0" * 32)
    before = snapshot(app)
    for path in [*bad, *unknown.values()]:
        for response in (client.get(path), client.post(path, data={"csrf_token": token})):
            if response.status_code == 405:
                continue
            assert response.status_code == 404, path
            assert "This link is not valid" in response.get_data(as_text=True)
    revoked = _links(app, sid, "0" * 32, version=0)
    for path in (revoked["manage"], revoked["unsubscribe"]):
        response = client.post(path, data={"csrf_token": token, "List-Unsubscribe": "One-Click"})
        assert response.status_code == 410
        assert "no longer valid" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_expired_confirmation_link(app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A confirmation link older than CONFIRM_MAX_AGE gets the "expired" page; the address stays pending."""
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # the form's own token must outlive the clock jump
    sid = add_subscriber(app, "late@example.org", SubscriberStatus.PENDING)
    link = _links(app, sid, "0" * 32)["confirm"]
    token = csrf_token(client.get(link).get_data(as_text=True))
    eight_days_later = int(time.time()) + app.config["CONFIRM_MAX_AGE"] + 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: eight_days_later)
    for response in (client.get(link), client.post(link, data={"csrf_token": token})):
        assert response.status_code == 410
        assert "This link has expired" in response.get_data(as_text=True)
    assert subscriber(app, "late@example.org").status == "pending"


def test_get_on_every_link_changes_nothing(app: Flask, client: FlaskClient) -> None:
    """A link scanner that GETs (and HEADs) every link in an email changes nothing; resubscribe is POST-only."""
    pending = add_subscriber(app, "scan1@example.org", SubscriberStatus.PENDING)
    confirmed = add_subscriber(app, "scan2@example.org", SubscriberStatus.CONFIRMED)
    unsubscribed = add_subscriber(app, "scan3@example.org", SubscriberStatus.UNSUBSCRIBED)
    paths = [p for sid in (pending, confirmed, unsubscribed) for p in _links(app, sid, "0" * 32).values()]
    paths += [p.replace("/unsubscribe/", "/resubscribe/") for p in paths if "/unsubscribe/" in p]
    before = snapshot(app)
    for path in paths:
        assert client.get(path).status_code in (200, 405, 410)
        assert client.head(path).status_code in (200, 405, 410)
    assert snapshot(app) == before


def test_unsubscribed_address_is_out_at_once(app: Flask, client: FlaskClient) -> None:
    """Unsubscribing sets the status and time in the same request; a pending address's link dies with it."""
    sid = add_subscriber(app, "pend@example.org", SubscriberStatus.PENDING)
    links = _links(app, sid, "0" * 32)
    assert client.post(links["unsubscribe"]).status_code == 200
    row = subscriber(app, "pend@example.org")
    assert (row.status, row.confirm_nonce) == ("unsubscribed", None)
    assert row.unsubscribed_at is not None
    page = client.get(links["unsubscribe"]).get_data(as_text=True)
    assert "Undo" not in page  # never confirmed: coming back needs the opt-in
    token = csrf_token(client.get("/subscribe").get_data(as_text=True))
    assert client.post(links["confirm"], data={"csrf_token": token}).status_code == 410
    undo = client.post(links["unsubscribe"].replace("/unsubscribe/", "/resubscribe/"), data={"csrf_token": token})
    assert undo.status_code == 409
    assert subscriber(app, "pend@example.org").status == "unsubscribed"
    manage = client.post(links["manage"], data={"csrf_token": token, "topics": ["news"]})
    assert manage.status_code == 409
    assert "not subscribed" in manage.get_data(as_text=True)


def test_rate_limit_per_address(app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object) -> None:
    """Over the per-address limit the visitor sees a friendly page, nothing is sent, and any address is alike."""
    app.config["RATELIMIT_CONFIRM_ADDRESS"] = "2 per hour"
    add_subscriber(app, "bounced@example.org", SubscriberStatus.SUPPRESSED)
    for email in ("victim@example.org", "VICTIM@example.org"):
        assert subscribe(client, email).status_code == 303
    mailbox.wait_for(2)
    before = snapshot(app)
    over = subscribe(client, "victim@example.org")
    assert over.status_code == 429
    assert "Please wait a while" in over.get_data(as_text=True)
    assert snapshot(app) == before
    answers = [subscribe(client, "bounced@example.org").status_code for _ in range(3)]
    assert answers == [303, 303, 429]
    assert subscribe(client, "other@example.org").status_code == 303
    mailbox.wait_for(3)
    time.sleep(0.3)
    assert [m["To"] for m in mailbox.messages] == ["victim@example.org"] * 2 + ["other@example.org"]


def test_rate_limit_per_client_ip(app: Flask, client: FlaskClient) -> None:
    """One client IP has a budget shared by the form, the widget and the API; other IPs are not affected."""
    app.config["RATELIMIT_SUBSCRIBE_IP"] = "3 per hour"
    assert subscribe(client, "a1@example.org").status_code == 303
    assert client.post("/subscribe/widget", data={"email": "a2@example.org", "topics": ["news"]}).status_code == 303
    assert client.post("/api/v1/subscriptions", json={"email": "a3@example.org"}).status_code == 202
    before = snapshot(app)
    assert subscribe(client, "a4@example.org").status_code == 429
    assert client.post("/subscribe/widget", data={"email": "a5@example.org"}).status_code == 429
    api = client.post("/api/v1/subscriptions", json={"email": "a6@example.org"})
    assert api.status_code == 429
    assert api.get_json()["error"] == "rate_limited"
    assert snapshot(app) == before
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert subscribe(elsewhere, "b1@example.org").status_code == 303
    assert [e.ip for e in events(app, "b1@example.org")] == ["203.0.113.9"]


def test_widget_form_works_without_our_csrf_token(app: Flask, client: FlaskClient) -> None:
    """The embeddable widget posts from another site; it is recorded with source "widget" (user agent cut to fit)."""
    client.environ_base["HTTP_USER_AGENT"] = "Mozilla/5.0 " + "x" * 1000
    answer = client.post("/subscribe/widget", data={"email": "w@example.org", "name": "W", "topics": ["projects"]})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/subscribe/check-inbox"
    (event,) = events(app, "w@example.org")
    assert (event.event, event.source, len(event.user_agent)) == ("subscribe", "widget", 512)
    broken = client.post("/subscribe/widget", data={"email": "not an address", "topics": ["projects"]})
    assert broken.status_code == 400
    assert 'action="/subscribe/widget"' in broken.get_data(as_text=True)


def test_form_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    """The site's own form is CSRF-protected: a cross-site POST without the token changes nothing."""
    before = snapshot(app)
    assert client.post("/subscribe", data={"email": "x@example.org", "topics": ["news"]}).status_code == 400
    assert snapshot(app) == before


LONG_LOCAL = "a" * 64
BAD_FORMS = [
    ({"email": ""}, "Enter your email address"),
    ({"email": "not-an-address"}, "not a valid email address"),
    ({"email": "ann@localhost"}, "not a valid email address"),
    ({"email": "ann@example.org\r\nBcc: all@example.org"}, "must be on one line"),
    ({"email": "ann@example.org\n"}, "must be on one line"),
    ({"email": "\rann@example.org"}, "must be on one line"),
    ({"email": f"{LONG_LOCAL}@{'b' * 60}.{'c' * 60}.{'d' * 60}.{'e' * 10}.org"}, "too long"),
    ({"email": "x" * 300 + "@example.org"}, "too long"),
    ({"email": "änne@example.org"}, "not a valid email address"),
    ({"email": "a b@example.org"}, "not a valid email address"),
    ({"email": "ann@example.org\x00"}, "not a valid email address"),
    ({"name": "A" * 201}, "too long"),
    ({"name": "Ann\r\nBcc: x@example.org"}, "one line"),
    ({"topics": ["cats"]}, "Choose topics among"),
    ({"topics": ["news", "meetings", "news\n"]}, "Choose topics among"),
    ({"topics": []}, "Choose at least one topic"),
]


def test_bad_form_input_is_a_form_error(app: Flask, client: FlaskClient) -> None:
    """Each bad value answers 400 with the form, the error in plain words tied to its field, nothing stored."""
    app.config["RATELIMIT_SUBSCRIBE_IP"] = "1000 per hour"
    before = snapshot(app)
    for fields, message in BAD_FORMS:
        data = {"email": "ann@example.org", "name": "Ann", "topics": ["news"], **fields}
        response = subscribe(client, **data)
        page = response.get_data(as_text=True)
        assert response.status_code == 400, fields
        assert message in page, fields
        assert 'aria-invalid="true"' in page or 'aria-describedby="topics-error"' in page, fields
    assert snapshot(app) == before


def test_stored_address_is_normalised(app: Flask, client: FlaskClient) -> None:
    """The domain is lower-cased and the address is unique regardless of case."""
    subscribe(client, "  Ann@EXAMPLE.org ")
    subscribe(client, "ANN@example.ORG")
    settle(app)
    with app.app_context():
        emails = db.session.execute(db.select(Subscriber.email)).scalars().all()
    assert emails == ["Ann@example.org"]


def test_subscribe_page_is_accessible(app: Flask, client: FlaskClient) -> None:
    """Every input has a label, topics are a fieldset with a legend, the consent sentence and version show."""
    page = client.get("/subscribe").get_data(as_text=True)
    for field in ("email", "name", "topics-0", "topics-1", "topics-2", "website"):
        assert f'<label for="{field}">' in page
    assert "<legend>Topics</legend>" in page
    assert page.count("checked") == 3
    assert f"Consent wording version {app.config['CONSENT_VERSION']}" in page
    assert 'href="/subscribe"' in client.get("/").get_data(as_text=True)


def test_hard_bounce_suppresses_and_later_requests_send_nothing(app: Flask, client: FlaskClient) -> None:
    """A refused recipient (what the tasks report) suppresses the address; its links stop working for undo."""
    from mailer.subscriptions.service import record_hard_bounce

    sid = add_subscriber(app, "nobody@example.org", SubscriberStatus.CONFIRMED)
    with app.app_context():
        record_hard_bounce(sid, "550 5.1.1 no such user")
        record_hard_bounce(sid, "550 5.1.1 no such user")
    row = subscriber(app, "nobody@example.org")
    assert (row.status, row.suppressed_reason) == ("suppressed", "550 5.1.1 no such user")
    assert [(e.event, e.source) for e in events(app, "nobody@example.org")] == [("suppress", "bounce")]
    rows, _ = snapshot(app)
    assert subscribe(client, "nobody@example.org").status_code == 303
    assert snapshot(app)[0] == rows  # the request is only recorded, like any other
    assert [e.event for e in events(app, "nobody@example.org")] == ["suppress", "subscribe"]


def test_confirmation_email_is_dkim_signed_when_configured(app: Flask, mailbox: CaughtMail) -> None:
    """With DKIM configured the confirmation email carries a signature that verifies over the list headers."""
    key = dkim_key()
    app.config.update(DKIM_DOMAIN="demo.mailer.invalid", DKIM_SELECTOR="mailer", DKIM_KEY=key.pem)
    sid = add_subscriber(app, "signed@example.org", SubscriberStatus.PENDING)
    with app.app_context():
        send_confirmation(db.session.get(Subscriber, sid))
    (message,) = mailbox.wait_for(1)
    signature = str(message["DKIM-Signature"])
    assert "list-unsubscribe" in signature.lower()
    assert "list-id" in signature.lower()
    assert dkim.verify(mailbox.raw[0], dnsfunc=key.dns(b"mailer", b"demo.mailer.invalid"))


def test_confirmation_to_an_unknown_mailbox_suppresses_it(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """The worker's confirmation email is refused at RCPT with a 550: the address ends suppressed."""
    mailbox.unknown_users = {"typo@example.org"}
    assert subscribe(client, "typo@example.org").status_code == 303
    wait_until(lambda: subscriber(app, "typo@example.org").status == "suppressed")
    row = subscriber(app, "typo@example.org")
    assert "User unknown" in row.suppressed_reason
    assert [e.event for e in events(app, "typo@example.org")] == ["subscribe", "suppress"]
    assert mailbox.messages == []


def test_optional_headers_follow_the_configuration(
    app: Flask, mailbox: CaughtMail, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS BASE_URL first in List-Unsubscribe, then the mailto; Reply-To, List-Id and Return-Path as set."""
    monkeypatch.setenv("UNSUBSCRIBE_MAILTO", "Unsubscribe desk <leave@example.org>")
    monkeypatch.setenv("REPLY_TO", "SMEWG Secretariat <secretariat@example.org>")
    monkeypatch.setenv("LIST_ID", "SMEWG News <news.smewg.example.org>")
    monkeypatch.setenv("BOUNCE_ADDRESS", "bounces@example.org")
    loaded = load_config(dict(os.environ), app.instance_path)
    app.config.update({k: loaded[k] for k in ("UNSUBSCRIBE_MAILTO", "REPLY_TO", "LIST_ID", "BOUNCE_ADDRESS")})
    app.config["BASE_URL"] = "https://news.example.org"
    sid = add_subscriber(app, "ana@example.org", SubscriberStatus.PENDING)
    with app.app_context():
        send_confirmation(db.session.get(Subscriber, sid))
    (message,) = mailbox.wait_for(1)
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://news.example.org/subscriptions/unsubscribe/")
    assert unsubscribe.endswith(", <mailto:leave@example.org?subject=unsubscribe>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Reply-To"] == "SMEWG Secretariat <secretariat@example.org>"
    assert message["List-Id"] == "SMEWG News <news.smewg.example.org>"
    [(envelope, recipients)] = mailbox.envelopes
    assert recipients == ["ana@example.org"]
    assert envelope.startswith("bounces+s")
    assert envelope.endswith("@example.org")
    with app.app_context():
        assert read_verp(envelope) == Tag("s", sid)


def test_a_subscriber_voids_every_link_they_were_sent(app: Flask, client: FlaskClient) -> None:
    """From the preferences page: old manage and unsubscribe links answer 410 and change nothing; new ones work."""
    sid = add_subscriber(app, "leaked@example.org", SubscriberStatus.CONFIRMED)
    old = _links(app, sid, "0" * 32)
    page = client.get(old["manage"]).get_data(as_text=True)
    assert "Void every link sent to me" in page
    refused = client.post(old["manage"] + "/revoke", data={"csrf_token": "forged"})
    assert refused.status_code == 400
    assert subscriber(app, "leaked@example.org").link_version == 1
    done = client.post(old["manage"] + "/revoke", data={"csrf_token": csrf_token(page)})
    assert done.status_code == 200
    assert "Every link we sent you is void" in done.get_data(as_text=True)
    assert done.headers["Referrer-Policy"] == "no-referrer"
    token = csrf_token(page)
    for path in (old["manage"], old["unsubscribe"], old["manage"] + "/revoke"):
        response = client.post(path, data={"csrf_token": token, "List-Unsubscribe": "One-Click"})
        assert response.status_code == 410, path
    after = subscriber(app, "leaked@example.org")
    assert (after.status, after.link_version) == (SubscriberStatus.CONFIRMED, 2)
    new = _links(app, sid, "0" * 32, version=2)
    assert client.get(new["manage"]).status_code == 200
    with app.app_context():
        actions = db.session.execute(db.select(AuditEntry.actor, AuditEntry.action)).all()
    assert actions == [("subscriber", "subscriber.revoke_links")]
