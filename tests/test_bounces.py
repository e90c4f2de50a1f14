"""What comes back after sending: VERP, DSNs and complaints by pipe and by SMTP, soft scores, mailto unsubscribes."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import smtplib
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mailer import create_app
from mailer.bounces import intake
from mailer.bounces.listener import start_listener
from mailer.bounces.verp import DELIVERY, SUBSCRIBER, read_verp, verp_address
from mailer.content.importer import import_text
from mailer.digests import service as digests
from mailer.extensions import db
from mailer.models import ALL_TOPICS, BounceEvent, ConsentEvent, Delivery, Digest, Subscriber, utcnow
from mailer.sending import engine
from tests.bounce_mail import arf_complaint, out_of_office, person_writes, postfix_dsn
from tests.conftest import CaughtMail, free_port, wait_until
from tests.data import digest_content, news_item
from tests.processes import BIN, ROOT, ServiceProcess

READERS = ("ann@example.org", "bob@example.org", "cy@example.org", "dee@example.org")


def _send_digest(app: Flask, mailbox: CaughtMail, worker: bool = False) -> dict[str, tuple[str, str]]:
    """Send a digest to every confirmed reader; each reader's (envelope sender, Message-ID).

    Without a worker the batches run in this process; with one (``worker``), the worker sends it.
    """
    with app.app_context():
        digest_id = digests.create_digest().id  # queues its release: a worker, if one runs, does the rest
        if not worker:
            digests.release_due()
            app.extensions["celery"].control.purge()
            while not engine.send_batch(digest_id, app.extensions["mailer.variants"]).done:
                pass
    if worker:
        wait_until(lambda: _digest_status(app, digest_id) == "sent")
    sent = {}
    for (mail_from, tos), message in zip(mailbox.envelopes, mailbox.messages, strict=True):
        sent[tos[0]] = (mail_from, str(message["Message-ID"]))
    mailbox.envelopes.clear()
    mailbox.messages.clear()
    return sent


def _digest_status(app: Flask, digest_id: int) -> str:
    """The digest's status now."""
    with app.app_context():
        return db.session.execute(db.select(Digest.status).where(Digest.id == digest_id)).scalar_one()


@pytest.fixture
def readers(app: Flask) -> None:
    """Content to send and four confirmed readers."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        db.session.add_all(
            Subscriber(email=e, topics=ALL_TOPICS, status="confirmed", confirmed_at=utcnow()) for e in READERS
        )
        db.session.commit()


def _status(app: Flask, email: str) -> str:
    """The subscriber's status now."""
    with app.app_context():
        return db.session.execute(db.select(Subscriber.status).where(Subscriber.email == email)).scalar_one()


def _process(app: Flask, raw: bytes, sent_to: list[str]) -> str:
    """What a worker does with one queued message (the task's body, in this process)."""
    with app.app_context():
        return intake.process_message(__import__("base64").b64encode(raw).decode(), sent_to)


def test_each_email_has_its_own_signed_envelope_sender(app: Flask, mailbox: CaughtMail, readers: None) -> None:
    """A digest's envelope senders are BOUNCE_ADDRESS plus a tag naming each delivery; a forged tag names nobody."""
    sent = _send_digest(app, mailbox)
    with app.app_context():
        deliveries = {d.email: d.id for d in db.session.execute(db.select(Delivery)).scalars()}
        for email, (envelope, _) in sent.items():
            assert envelope.startswith("news+d")
            assert envelope.endswith("@demo.mailer.invalid")
            tag = read_verp(envelope)
            assert tag is not None
            assert (tag.kind, tag.id) == (DELIVERY, deliveries[email])
            assert read_verp(envelope.upper()) == tag  # servers that fold case do not break it
        ann = sent["ann@example.org"][0]
        forged = ann.replace(ann[ann.index("+d") + 2], "z", 1)
        assert read_verp(forged) is None
        assert read_verp(ann.replace("demo.mailer.invalid", "elsewhere.example")) is None
        other = verp_address(SUBSCRIBER, 7)
        assert read_verp(other).kind == SUBSCRIBER


def test_bounces_and_a_complaint_keep_three_readers_out_of_the_next_digest(
    app: Flask, mailbox: CaughtMail, readers: None, runner: FlaskCliRunner, request: pytest.FixtureRequest
) -> None:
    """End to end: a digest goes out; the relay bounces ann (by the MTA's pipe) and bob (by SMTP to the listener),
    cy complains; the worker handles all three, and the next digest reaches dee only."""
    sent = _send_digest(app, mailbox)
    request.getfixturevalue("celery_worker")  # from here a real worker handles what comes back
    ann_to, ann_id = sent["ann@example.org"]
    result: Result = runner.invoke(
        args=["bounces", "receive", "--to", ann_to], input=postfix_dsn(ann_to, "ann@example.org", ann_id)
    )
    assert result.exit_code == 0, result.output
    port = free_port()
    listener = start_listener(app, "127.0.0.1", port)
    try:
        bob_to, bob_id = sent["bob@example.org"]
        cy_to, cy_id = sent["cy@example.org"]
        with smtplib.SMTP("127.0.0.1", port) as relay:
            relay.sendmail("", [bob_to], postfix_dsn(bob_to, "bob@example.org", bob_id, report_id="bob"))
            relay.sendmail("fbl@example.net", [cy_to], arf_complaint(cy_to, "cy@example.org", cy_id))
    finally:
        listener.stop()
    wait_until(lambda: [_status(app, e) for e in READERS[:3]] == ["suppressed"] * 3)
    assert _status(app, "dee@example.org") == "confirmed"
    with app.app_context():
        statuses = dict(db.session.execute(db.select(Delivery.email, Delivery.status)).all())
        assert statuses["ann@example.org"] == "bounced"
        assert statuses["bob@example.org"] == "bounced"
        assert statuses["cy@example.org"] == "sent"  # delivered, then complained about
        events = {e.subscriber.email: e.event for e in db.session.execute(db.select(ConsentEvent)).scalars()}
        assert events == {"ann@example.org": "suppress", "bob@example.org": "suppress", "cy@example.org": "complaint"}
        reason = db.session.execute(
            db.select(Subscriber.suppressed_reason).where(Subscriber.email == "ann@example.org")
        ).scalar_one()
        assert "5.1.1" in reason
        import_text(json.dumps({"news": [news_item(slug="second", title="A second item")]}))
    mailbox.envelopes.clear()
    mailbox.messages.clear()
    assert list(_send_digest(app, mailbox, worker=True)) == ["dee@example.org"]


def test_the_same_report_twice_counts_once(app: Flask, mailbox: CaughtMail, readers: None) -> None:
    """An MTA that delivers a DSN twice (a retry after a timeout) makes one bounce event."""
    sent = _send_digest(app, mailbox)
    to, message_id = sent["ann@example.org"]
    dsn = postfix_dsn(to, "ann@example.org", message_id)
    assert _process(app, dsn, [to]) == "suppressed"
    assert _process(app, dsn, [to]) == "duplicate"
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(BounceEvent.id))).scalar_one() == 1


def test_soft_bounces_suppress_only_on_several_days(app: Flask, mailbox: CaughtMail, readers: None) -> None:
    """Three soft bounces in one day are one point; on three different days within the window, suppression."""
    sent = _send_digest(app, mailbox)
    to, message_id = sent["bob@example.org"]
    for n in range(3):
        dsn = postfix_dsn(to, "bob@example.org", message_id, status="4.2.2", report_id=f"soft{n}")
        assert _process(app, dsn, [to]) == "counted"
    assert _status(app, "bob@example.org") == "confirmed"
    with app.app_context():
        events = db.session.execute(db.select(BounceEvent).order_by(BounceEvent.id)).scalars().all()
        for days, event in zip((3, 1), events, strict=False):
            event.received_at = utcnow() - timedelta(days=days)
        db.session.commit()
    dsn = postfix_dsn(to, "bob@example.org", message_id, status="4.2.2", report_id="soft-last")
    assert _process(app, dsn, [to]) == "suppressed"
    assert _status(app, "bob@example.org") == "suppressed"


def test_old_soft_bounces_fall_out_of_the_window(app: Flask, mailbox: CaughtMail, readers: None) -> None:
    """Soft bounces older than BOUNCE_SOFT_WINDOW days no longer count."""
    sent = _send_digest(app, mailbox)
    to, message_id = sent["bob@example.org"]
    for n in range(2):
        _process(app, postfix_dsn(to, "bob@example.org", message_id, status="4.2.2", report_id=f"old{n}"), [to])
    with app.app_context():
        for n, event in enumerate(db.session.execute(db.select(BounceEvent)).scalars()):
            event.received_at = utcnow() - timedelta(days=30 + n)
        db.session.commit()
    dsn = postfix_dsn(to, "bob@example.org", message_id, status="4.2.2", report_id="new")
    assert _process(app, dsn, [to]) == "counted"
    assert _status(app, "bob@example.org") == "confirmed"


def test_an_out_of_office_reply_is_ignored(app: Flask, mailbox: CaughtMail, readers: None) -> None:
    """Auto-replies never count as bounces."""
    sent = _send_digest(app, mailbox)
    to, _ = sent["dee@example.org"]
    assert _process(app, out_of_office(to, "dee@example.org"), [to]).startswith("ignored")
    assert _status(app, "dee@example.org") == "confirmed"
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(BounceEvent.id))).scalar_one() == 0


def test_a_forged_bounce_without_our_tag_or_message_id_changes_nothing(
    app: Flask, mailbox: CaughtMail, readers: None
) -> None:
    """Anyone can write a DSN naming dee; without our signed tag or a Message-ID we sent, it names nobody."""
    _send_digest(app, mailbox)
    with app.app_context():
        plain = app.config["BOUNCE_ADDRESS"].split("<")[-1].strip(">")
    forged = postfix_dsn(plain, "dee@example.org", "<guessed@demo.mailer.invalid>")
    assert _process(app, forged, [plain]) == "unmatched"
    assert _status(app, "dee@example.org") == "confirmed"


def test_mail_to_the_unsubscribe_address_unsubscribes_its_sender(app: Flask, readers: None) -> None:
    """List-Unsubscribe's mailto: is read: the address that wrote is unsubscribed, consent source "mailto"."""
    app.config["UNSUBSCRIBE_MAILTO"] = "unsubscribe@demo.mailer.invalid"
    raw = person_writes("unsubscribe@demo.mailer.invalid", "Dee@Example.org")
    assert _process(app, raw, ["unsubscribe@demo.mailer.invalid"]) == "unsubscribed"
    assert _status(app, "dee@example.org") == "unsubscribed"
    with app.app_context():
        [event] = db.session.execute(db.select(ConsentEvent)).scalars().all()
        assert event.event == "unsubscribe"
        assert event.source == "mailto"


def test_the_listener_is_not_a_relay(app: Flask) -> None:
    """Mail for anyone but our bounce and unsubscribe addresses is refused at RCPT."""
    port = free_port()
    listener = start_listener(app, "127.0.0.1", port)
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            client.mail("")
            code, _ = client.rcpt("someone@example.org")
            assert code == 550
            code, _ = client.rcpt("news+anything@demo.mailer.invalid")
            assert code == 250
    finally:
        listener.stop()


def test_receive_asks_the_mta_to_retry_when_the_broker_is_down(app: Flask, tmp_path: object) -> None:
    """No broker: `bounces receive` exits 75 (EX_TEMPFAIL) so the MTA keeps the message and tries later."""
    down = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "CELERY": {"broker_connection_retry": False, "broker_connection_max_retries": 0},
        }
    )
    result = down.test_cli_runner().invoke(args=["bounces", "receive"], input=b"From: x@example.org\r\n\r\nhi\r\n")
    assert result.exit_code == 75


def test_unsuppress_on_the_owners_request(
    app: Flask, mailbox: CaughtMail, readers: None, runner: FlaskCliRunner
) -> None:
    """A suppressed address is mailed again when its owner asks: confirmed again, logged twice over."""
    sent = _send_digest(app, mailbox)
    to, message_id = sent["ann@example.org"]
    _process(app, postfix_dsn(to, "ann@example.org", message_id), [to])
    result = runner.invoke(args=["bounces", "unsuppress", "ANN@example.org"])
    assert result.exit_code == 0, result.output
    assert _status(app, "ann@example.org") == "confirmed"
    assert runner.invoke(args=["bounces", "unsuppress", "ann@example.org"]).exit_code == 1
    with app.app_context():
        events = [e.event for e in db.session.execute(db.select(ConsentEvent).order_by(ConsentEvent.id)).scalars()]
        assert events == ["suppress", "unsuppress"]


def test_the_procfiles_bounces_process_receives_and_stops(
    app: Flask, mailbox: CaughtMail, readers: None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The Procfile's `bounces` line, run as a process: a relay's DSN reaches the worker; SIGTERM stops it."""
    sent = _send_digest(app, mailbox)
    request.getfixturevalue("celery_worker")  # started after the digest went out, so it never races the send
    line = next(x for x in (ROOT / "Procfile").read_text().splitlines() if x.startswith("bounces:"))
    port = free_port()
    argv = shlex.split(re.sub(r"\$\{BOUNCE_LISTEN:-[^}]*\}", f"127.0.0.1:{port}", line.split(":", 1)[1]))
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "REDIS_PREFIX": app.config["REDIS_PREFIX"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "MAILER_INSTANCE": str(tmp_path / "instance"),
    }
    process = ServiceProcess("bounces", [str(BIN / argv[0]), *argv[1:]], env, tmp_path / "bounces.log")
    try:
        wait_until(lambda: _answers(port), timeout=30)
        to, message_id = sent["dee@example.org"]
        with smtplib.SMTP("127.0.0.1", port) as relay:
            relay.sendmail("", [to], postfix_dsn(to, "dee@example.org", message_id, report_id="procfile"))
        wait_until(lambda: _status(app, "dee@example.org") == "suppressed")
        process.popen.send_signal(signal.SIGTERM)
        assert process.popen.wait(15) == 0, process.tail()
    finally:
        if process.popen.poll() is None:
            process.kill()


def _answers(port: int) -> bool:
    """True once something accepts connections on ``port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_confirmation_email_that_bounces_suppresses_the_pending_address(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """The confirmation email's envelope sender names the subscriber; its bounce suppresses the pending address."""
    answer = client.post("/api/v1/subscriptions", json={"email": "typo@example.org"})
    assert answer.status_code == 202
    mailbox.wait_for(1)
    [(envelope, _)] = mailbox.envelopes
    with app.app_context():
        tag = read_verp(envelope)
    assert tag is not None
    assert tag.kind == SUBSCRIBER
    raw = postfix_dsn(envelope, "typo@example.org", str(mailbox.messages[0]["Message-ID"]), report_id="typo")
    assert _process(app, raw, [envelope]) == "suppressed"
    assert _status(app, "typo@example.org") == "suppressed"
