"""SEND_RATE: a global cap shared through Redis by every sender, and no cap when it is unset."""

from __future__ import annotations

import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import pytest
import redis
from aiosmtpd.controller import Controller

from mailer import create_app
from mailer.mail import get_transport
from mailer.mail.throttle import SendThrottle
from tests.conftest import CaughtMail


def test_senders_in_parallel_share_one_rate(redis_url: str) -> None:
    """Three senders with their own clients take 60 slots at 50/s: together no faster than the cap."""
    key = f"mailer-test-rate-{uuid.uuid4().hex}"
    slots: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        throttle = SendThrottle(redis.Redis.from_url(redis_url), 50, key=key)
        for _ in range(20):
            throttle.wait()
            with lock:
                slots.append(time.monotonic())

    started = time.monotonic()
    threads = [threading.Thread(target=sender) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(slots) == 60
    # 60 messages at 50/s: the last may go no earlier than 59 intervals after the first.
    assert time.monotonic() - started >= 59 / 50 - 0.05
    slots.sort()
    in_any_second = max(sum(1 for t in slots if s <= t < s + 1) for s in slots)
    assert in_any_second <= 51


def _message() -> bytes:
    """A small message."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "news@example.org", "ana@example.org", "Paced"
    msg.set_content("hello")
    return msg.as_bytes()


def test_transport_paces_at_send_rate(
    smtp_server: tuple[CaughtMail, Controller], redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With SEND_RATE=20 ten real sends take at least nine intervals; unset, no pacing applies."""
    mailbox, controller = smtp_server
    monkeypatch.setenv("MAILER_INSTANCE", str(tmp_path))
    app = create_app({"TESTING": True, "REDIS_URL": redis_url, "SMTP_URL": f"smtp://127.0.0.1:{controller.port}"})
    app.config["SEND_RATE"] = 20.0
    with app.app_context():
        transport = get_transport()
        transport.throttle.key = f"mailer-test-rate-{uuid.uuid4().hex}"
        started = time.monotonic()
        for _ in range(10):
            transport.send("news@example.org", ["ana@example.org"], _message())
        assert time.monotonic() - started >= 9 / 20 - 0.05
        app.config["SEND_RATE"] = None
        assert get_transport().throttle is None
    assert len(mailbox.messages) == 10


def test_send_rate_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    """SEND_RATE=2.5 in the environment is the transport's cap."""
    monkeypatch.setenv("MAILER_INSTANCE", str(tmp_path))
    monkeypatch.setenv("SEND_RATE", "2.5")
    app = create_app({"TESTING": True, "REDIS_URL": redis_url})
    with app.app_context():
        assert get_transport().throttle.interval_us == 400_000
