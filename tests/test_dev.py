"""The development SMTP server catches mail and the caught-mail pages show it (embedded mode only)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer import create_app
from mailer.dev.smtp import caught_mail_path, start_dev_smtp
from tests.conftest import free_port, wait_until


def _send(port: int, subject: str) -> None:
    """Send one multipart message to the development server."""
    msg = EmailMessage()
    msg["From"] = "news@example.org"
    msg["To"] = "ana@example.org"
    msg["Subject"] = subject
    msg.set_content("Plain words")
    msg.add_alternative("<p>Hello <b>Ana</b><script>alert(1)</script></p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg)


def test_caught_mail_is_listed_and_rendered(app: Flask, client: FlaskClient) -> None:
    """A message sent to the dev server shows in the list, with its text, HTML and raw bytes."""
    port = free_port()
    server = start_dev_smtp(caught_mail_path(app.instance_path), port=port)
    try:
        _send(port, "Caught subject é")
        index = wait_until(lambda: (p := client.get("/dev/mail/").get_data(as_text=True)) and "Caught" in p and p)
    finally:
        server.stop()
    assert "Caught subject é" in index
    key = index.split('href="/dev/mail/')[1].split('"')[0]
    page = client.get(f"/dev/mail/{key}").get_data(as_text=True)
    assert "Plain words" in page
    assert "ana@example.org" in page
    html = client.get(f"/dev/mail/{key}/html")
    assert "<b>Ana</b>" in html.get_data(as_text=True)
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    assert b"Subject: Caught subject" in client.get(f"/dev/mail/{key}/raw").data


def test_unknown_caught_message_is_404(client: FlaskClient) -> None:
    """A made-up key answers 404, including path tricks."""
    for key in ("nope", "..%2F..%2Fsecret_key", "%00"):
        assert client.get(f"/dev/mail/{key}").status_code == 404


def test_caught_mail_pages_do_not_exist_in_production(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    """In production mode there is no /dev/mail at all."""
    for name, value in {
        "MAILER_ENV": "production",
        "SECRET_KEY": "k" * 40,
        "BASE_URL": "https://news.example.org",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "REDIS_URL": redis_url,
        "SMTP_URL": "smtp://127.0.0.1:25",
        "MAIL_FROM": "News <news@example.org>",
        "ORG_POSTAL_ADDRESS": "1 Example Street, Singapore",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True})
    assert not any(rule.rule.startswith("/dev") for rule in app.url_map.iter_rules())
    assert app.test_client().get("/dev/mail/").status_code == 404
