"""SMTP transport: parse SMTP_URL, keep one connection per process, reconnect when it drops."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app

TIMEOUT = 30.0


class TransientSMTPError(Exception):
    """Worth retrying later: a 4xx reply, a dropped connection, a timeout."""

    def __init__(self, code: int | None, reply: str) -> None:
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply


class PermanentSMTPError(Exception):
    """Not worth retrying: a 5xx reply for this recipient or message."""

    def __init__(self, code: int, reply: str) -> None:
        super().__init__(f"{code} {reply}")
        self.code = code
        self.reply = reply


@dataclass(frozen=True)
class SMTPSettings:
    """What SMTP_URL says."""

    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> "SMTPSettings":
        """Parse ``smtp://user:pass@host:port?starttls=1`` or ``smtps://...``."""
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        implicit = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if implicit else 25),
            implicit_tls=implicit,
            starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SMTPTransport:
    """One SMTP connection, opened lazily and reopened once when the server dropped it."""

    def __init__(self, settings: SMTPSettings, ssl_context: ssl.SSLContext | None = None) -> None:
        self.settings = settings
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        """Open, secure and authenticate a new connection."""
        s = self.settings
        if s.implicit_tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT, context=self.ssl_context)
        else:
            conn = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT)
        conn.ehlo()
        if s.starttls:
            conn.starttls(context=self.ssl_context)
            conn.ehlo()
        if s.username:
            conn.login(s.username, s.password or "")
        return conn

    def send(self, envelope_from: str, to: list[str], data: bytes) -> None:
        """Send one message; raise TransientSMTPError or PermanentSMTPError on failure."""
        for attempt in (1, 2):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                refused = self._conn.sendmail(envelope_from, to, data)
            except (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout) as exc:
                self.close()
                if attempt == 2:
                    raise TransientSMTPError(None, f"connection lost: {exc}") from exc
                continue
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = next(iter(exc.recipients.values()))
                raise _classify(code, reply) from exc
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code in (421,):
                    self.close()
                raise _classify(exc.smtp_code, exc.smtp_error) from exc
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise TransientSMTPError(None, str(exc)) from exc
            if refused:
                code, reply = next(iter(refused.values()))
                raise _classify(code, reply)
            return

    def close(self) -> None:
        """Drop the connection (politely when it is still up)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                conn.close()


def _classify(code: int, reply: bytes | str) -> Exception:
    """Turn an SMTP reply into the transient or permanent error it is."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    if 500 <= code < 600:
        return PermanentSMTPError(code, text)
    return TransientSMTPError(code, text)


_transports: dict[tuple[int, str], SMTPTransport] = {}


def get_transport() -> SMTPTransport:
    """This process's transport for the app's SMTP_URL (a fork gets its own connection)."""
    url = current_app.config["SMTP_URL"]
    key = (os.getpid(), url)
    transport = _transports.get(key)
    if transport is None:
        transport = _transports[key] = SMTPTransport(SMTPSettings.from_url(url))
    return transport
