"""Bounces polled from a mailbox: a real IMAP server (pymap, in-memory backend) over TLS with a test CA."""

from __future__ import annotations

import asyncio
import imaplib
import json
import logging
import ssl
import subprocess
import sys
import threading
import time
from argparse import Namespace
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import quote

import pytest
import trustme
from flask import Flask
from flask.testing import FlaskCliRunner
from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import DictBackend
from pymap.imap import IMAPServer

from mailer import create_app
from mailer.bounces import mailbox as bounce_mailbox
from mailer.bounces import tasks
from mailer.bounces.verp import DELIVERY, verp_address
from mailer.config import ConfigError, load_config
from mailer.content.importer import import_text
from mailer.digests import service as digests
from mailer.extensions import db
from mailer.models import ALL_TOPICS, ConsentEvent, Delivery, Subscriber, utcnow
from mailer.redis_client import get_redis, redis_key
from mailer.sending import engine
from tests.bounce_mail import arf_complaint, postfix_dsn
from tests.conftest import CaughtMail, free_port, wait_until
from tests.data import digest_content

USER = "bounces@example.org"
PASSWORD = "p@ss word/1"
READERS = ("ann@example.org", "bob@example.org", "cy@example.org")


class ImapServer:
    """pymap's in-memory ("dict") backend with one user, serving implicit TLS on 127.0.0.1 from a thread.

    pymap itself offers STARTTLS only, so the test opens the listening socket with TLS and hands each
    connection to pymap's own IMAP server.
    """

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.port = free_port()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(tls),), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "pymap did not start"

    async def _serve(self, tls: ssl.SSLContext) -> None:
        """Run pymap until ``stop``."""
        args = Namespace(
            host=None, port=self.port, debug=False, cert=None, key=None, tls=False, proxy_protocol=None,
            passlib_cfg=None, demo_data=False, demo_user=USER, demo_password=PASSWORD,
        )  # fmt: skip
        # tls=False: pymap offers LOGIN without STARTTLS, since the socket is TLS from the first byte.
        backend, config = await DictBackend.init(args, invalid_user_sleep=0.0)
        config.apply_context()
        async with AsyncExitStack() as stack:
            await backend.start(stack)
            handler = ProxyProtocolReader(config.proxy_protocol).get_callback(IMAPServer(backend.login, config))
            server = await asyncio.start_server(handler, "127.0.0.1", self.port, ssl=tls)
            await stack.enter_async_context(server)
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def url(self, password: str = PASSWORD, folder: str = "") -> str:
        """BOUNCE_MAILBOX_URL for this server (credentials percent-encoded)."""
        return f"imaps://{quote(USER, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}/{folder}"

    def client(self) -> imaplib.IMAP4_SSL:
        """A logged-in IMAP client with INBOX selected (the test's own view of the mailbox)."""
        imap = imaplib.IMAP4_SSL("127.0.0.1", self.port, ssl_context=ssl.create_default_context(), timeout=10)
        imap.login(USER, PASSWORD)
        imap.select("INBOX")
        return imap

    def append(self, *messages: bytes) -> None:
        """Place messages in INBOX, unread (IMAP APPEND)."""
        imap = self.client()
        try:
            for raw in messages:
                kind, data = imap.append("INBOX", None, imaplib.Time2Internaldate(time.time()), raw)
                assert kind == "OK", data
        finally:
            imap.logout()

    def flags(self) -> list[bytes]:
        """Each message's flags in INBOX, as the server reports them (expunged messages are gone)."""
        imap = self.client()
        try:
            _, [count] = imap.select("INBOX")
            return imap.fetch("1:*", "(FLAGS)")[1] if int(count) else []
        finally:
            imap.logout()


@pytest.fixture
def imap_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ImapServer]:
    """A real IMAP server over TLS whose certificate (for 127.0.0.1) the system's CA list, made for the test, trusts."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    monkeypatch.setenv("FQDN", "imap.test")  # pymap's greeting; spares a DNS lookup
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    server = ImapServer(tls)
    yield server
    server.stop()


@pytest.fixture
def polled(app: Flask, imap_server: ImapServer) -> ImapServer:
    """The app set to poll ``imap_server``'s INBOX."""
    app.config["BOUNCE_MAILBOX_URL"] = imap_server.url()
    return imap_server


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> pytest.LogCaptureFixture:
    """Warnings logged by mailer (the migrations' logging set-up switches loggers made before it off)."""
    for name in ("mailer", bounce_mailbox.__name__):
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    caplog.set_level(logging.WARNING)
    return caplog


def _send_digest(app: Flask, caught: CaughtMail) -> dict[str, tuple[str, str]]:
    """Send a digest to three confirmed readers; each reader's VERP address (by delivery) and Message-ID."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        db.session.add_all(
            Subscriber(email=e, topics=ALL_TOPICS, status="confirmed", confirmed_at=utcnow()) for e in READERS
        )
        db.session.commit()
        digest_id = digests.create_digest().id
        digests.release_due()
        app.extensions["celery"].control.purge()
        while not engine.send_batch(digest_id, app.extensions["mailer.variants"]).done:
            pass
        deliveries = dict(db.session.execute(db.select(Delivery.email, Delivery.id)).all())
        ids = {tos[0]: str(m["Message-ID"]) for (_, tos), m in zip(caught.envelopes, caught.messages, strict=True)}
        return {email: (verp_address(DELIVERY, deliveries[email]), ids[email]) for email in READERS}


def _a_bounce(app: Flask) -> bytes:
    """A DSN sent to a VERP address (for tests that only queue it, its delivery need not exist)."""
    with app.app_context():
        return postfix_dsn(verp_address(DELIVERY, 1), "dee@example.org", "<x@demo.mailer.invalid>")


def _status(app: Flask, email: str) -> str:
    """The subscriber's status now."""
    with app.app_context():
        return db.session.execute(db.select(Subscriber.status).where(Subscriber.email == email)).scalar_one()


def test_a_bounce_and_a_complaint_in_the_mailbox_suppress_their_readers(
    app: Flask, mailbox: CaughtMail, polled: ImapServer, runner: FlaskCliRunner, request: pytest.FixtureRequest
) -> None:
    """A DSN and an ARF report appended to the mailbox are queued and deleted by one poll; the worker suppresses
    both readers; the next poll finds nothing."""
    sent = _send_digest(app, mailbox)
    request.getfixturevalue("celery_worker")  # only now, so it never races this process for the digest's sends
    ann_to, ann_id = sent["ann@example.org"]
    bob_to, bob_id = sent["bob@example.org"]
    polled.append(postfix_dsn(ann_to, "ann@example.org", ann_id), arf_complaint(bob_to, "bob@example.org", bob_id))
    result = runner.invoke(args=["bounces", "poll"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "2 messages queued"
    assert polled.flags() == []  # deleted and expunged
    wait_until(lambda: [_status(app, e) for e in READERS] == ["suppressed", "suppressed", "confirmed"])
    with app.app_context():
        events = {e.subscriber.email: e.event for e in db.session.execute(db.select(ConsentEvent)).scalars()}
        assert events == {"ann@example.org": "suppress", "bob@example.org": "complaint"}
        assert db.session.execute(db.select(Delivery.status).where(Delivery.email == "ann@example.org")).scalar() == (
            "bounced"
        )
        assert bounce_mailbox.poll_mailbox() == 0
    assert runner.invoke(args=["bounces", "poll"]).output.strip() == "0 messages queued"


def test_the_beat_task_queues_and_deletes(app: Flask, polled: ImapServer) -> None:
    """The beat task, run as beat runs it, empties the mailbox into the queue."""
    polled.append(_a_bounce(app))
    tasks.poll_mailbox.apply()
    assert polled.flags() == []
    queue = app.config["REDIS_PREFIX"]
    with app.app_context():
        assert get_redis().llen(queue) == 1


def test_a_message_over_the_limit_is_marked_read_and_left(
    app: Flask, polled: ImapServer, logs: pytest.LogCaptureFixture
) -> None:
    """A message over 10 MB is no bounce we can read: marked read, left for a person, logged; the others go on."""
    big = b"From: someone@example.net\r\nSubject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * (
        bounce_mailbox.MAX_FETCH // 1000 + 1
    )
    polled.append(big, _a_bounce(app))
    with app.app_context():
        assert bounce_mailbox.poll_mailbox() == 1
        assert bounce_mailbox.poll_mailbox() == 0
    [flags] = polled.flags()
    assert b"\\Seen" in flags and b"\\Deleted" not in flags
    assert "marked read and left" in logs.text


def test_a_wrong_password_is_logged_and_changes_nothing(
    app: Flask, polled: ImapServer, runner: FlaskCliRunner, logs: pytest.LogCaptureFixture
) -> None:
    """The server refuses the login: the task logs it and ends; the message stays unread for the next poll."""
    polled.append(_a_bounce(app))
    app.config["BOUNCE_MAILBOX_URL"] = polled.url(password="wrong")
    tasks.poll_mailbox.apply().get()
    assert "bounce mailbox not read" in logs.text
    assert "wrong" not in logs.text
    result = runner.invoke(args=["bounces", "poll"])
    assert result.exit_code == 1
    assert "bounce mailbox not read" in result.output
    [flags] = polled.flags()
    assert b"\\Seen" not in flags and b"\\Deleted" not in flags
    with app.app_context():
        assert get_redis().llen(app.config["REDIS_PREFIX"]) == 0


def test_no_server_and_an_untrusted_certificate_are_logged(
    app: Flask, imap_server: ImapServer, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    """Nothing listening, or a certificate the system's CAs do not vouch for: logged, nothing raised."""
    app.config["BOUNCE_MAILBOX_URL"] = f"imaps://u:p@127.0.0.1:{free_port()}/"
    tasks.poll_mailbox.apply().get()
    assert "cannot connect" in logs.text
    logs.clear()
    monkeypatch.setenv("SSL_CERT_FILE", "/nonexistent.pem")
    app.config["BOUNCE_MAILBOX_URL"] = imap_server.url()
    tasks.poll_mailbox.apply().get()
    assert "CERTIFICATE_VERIFY_FAILED" in logs.text


def test_one_poll_at_a_time(app: Flask, polled: ImapServer, runner: FlaskCliRunner) -> None:
    """While one poll holds the lock, another does nothing."""
    polled.append(_a_bounce(app))
    with app.app_context(), get_redis().lock(redis_key("bounces:mailbox-poll"), timeout=30):
        assert bounce_mailbox.poll_mailbox() is None
        result = runner.invoke(args=["bounces", "poll"])
        assert result.exit_code == 1
        assert "another poll" in result.output
    assert len(polled.flags()) == 1


def test_beat_polls_only_when_a_mailbox_is_set(app: Flask) -> None:
    """The beat entry exists only with BOUNCE_MAILBOX_URL, every BOUNCE_MAILBOX_INTERVAL seconds."""
    assert "poll-bounce-mailbox" not in app.extensions["celery"].conf.beat_schedule
    given = {**app.config, "BOUNCE_MAILBOX_URL": "imaps://u:p@imap.example.org/Bounces", "BOUNCE_MAILBOX_INTERVAL": 120}
    entry = create_app(given).extensions["celery"].conf.beat_schedule["poll-bounce-mailbox"]
    assert entry["task"] == bounce_mailbox.POLL_TASK
    assert entry["schedule"] == 120.0


def test_the_url_is_read(tmp_path: Path) -> None:
    """Percent-encoded credentials, the port and the folder (INBOX when none); imap:// to this machine."""
    url = "imaps://bounces%40example.org:p%40ss%2Fw@imap.example.org:1993/Bounce%20Mail"
    config = load_config({"BOUNCE_MAILBOX_URL": url, "BOUNCE_MAILBOX_INTERVAL": "600"}, str(tmp_path))
    assert config["BOUNCE_MAILBOX_INTERVAL"] == 600
    box = bounce_mailbox.Mailbox.from_url(config["BOUNCE_MAILBOX_URL"])
    assert box == bounce_mailbox.Mailbox("imap.example.org", 1993, True, "bounces@example.org", "p@ss/w", "Bounce Mail")
    local = bounce_mailbox.Mailbox.from_url(load_config({"BOUNCE_MAILBOX_URL": "imap://u:p@localhost"}, str(tmp_path))[
        "BOUNCE_MAILBOX_URL"
    ])  # fmt: skip
    assert (local.port, local.tls, local.folder) == (143, False, "INBOX")
    defaults = load_config({}, str(tmp_path))
    assert defaults["BOUNCE_MAILBOX_URL"] is None
    assert defaults["BOUNCE_MAILBOX_INTERVAL"] == 60


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BOUNCE_MAILBOX_URL", "ftp://u:p@imap.example.org/INBOX"),
        ("BOUNCE_MAILBOX_URL", "imaps://u:p@/INBOX"),
        ("BOUNCE_MAILBOX_URL", "imaps:///INBOX"),
        ("BOUNCE_MAILBOX_URL", "https://u:p@imap.example.org/INBOX"),
        ("BOUNCE_MAILBOX_URL", "imap.example.org"),
        ("BOUNCE_MAILBOX_URL", "imap://u:secret@imap.example.org/INBOX"),
        ("BOUNCE_MAILBOX_URL", "imaps://imap.example.org/INBOX"),
        ("BOUNCE_MAILBOX_URL", "imaps://u:p@imap.example.org:99999/INBOX"),
        ("BOUNCE_MAILBOX_URL", "imaps://u:p@imap.example.org/INBOX?x=1"),
        ("BOUNCE_MAILBOX_URL", "imaps://u:p@imap.example.org/Bo%0Aunces"),
        ("BOUNCE_MAILBOX_INTERVAL", "5"),
        ("BOUNCE_MAILBOX_INTERVAL", "7200"),
        ("BOUNCE_MAILBOX_INTERVAL", "1m"),
    ],
)
def test_a_malformed_setting_is_refused(tmp_path: Path, name: str, value: str) -> None:
    """Each malformed value stops start-up with a message naming the variable and never the password."""
    with pytest.raises(ConfigError, match=name) as error:
        load_config({name: value}, str(tmp_path))
    assert "secret" not in str(error.value)


def test_a_malformed_url_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    """`flask --app wsgi` in production with imap:// to another host: one line naming it, no traceback."""
    env = {
        "PATH": "/usr/bin:/bin",
        "MAILER_INSTANCE": str(tmp_path),
        "MAILER_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "BASE_URL": "https://news.example.org",
        "DATABASE_URL": "postgresql://mailer@db.example.org/mailer",
        "REDIS_URL": "redis://redis.example.org:6379/0",
        "SMTP_URL": "smtps://user:p%40ss@smtp.example.org:465",
        "MAIL_FROM": "SMEWG News <news@example.org>",
        "ORG_POSTAL_ADDRESS": "1 Example Street",
        "BOUNCE_MAILBOX_URL": "imap://bounces:secret@imap.example.org/INBOX",
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "mailer: configuration error: BOUNCE_MAILBOX_URL: imap:// sends the password in clear; "
        "use imaps:// (imap:// is loopback only)"
    )
    assert "Traceback" not in result.stdout + result.stderr
