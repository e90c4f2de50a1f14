"""A development SMTP server (aiosmtpd) that keeps every message it receives in a Maildir."""

from __future__ import annotations

import mailbox
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    """Stores each received message, with its envelope recipients, in a Maildir."""

    def __init__(self, path: Path) -> None:
        self.maildir = mailbox.Maildir(str(path), create=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message; answer 250."""
        message = mailbox.MaildirMessage(envelope.original_content or envelope.content)
        message["X-Envelope-From"] = envelope.mail_from or ""
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.maildir.add(message)
        return "250 Message caught by the mailer development server"


def caught_mail_path(instance_path: str) -> Path:
    """Where the embedded default keeps caught mail: one place for server and web pages."""
    return Path(instance_path) / "caught-mail"


def start_dev_smtp(path: Path, host: str = "127.0.0.1", port: int = 8025) -> Controller:
    """Start the server in a background thread and return its controller (``.stop()`` ends it)."""
    controller = Controller(MaildirHandler(path), hostname=host, port=port, data_size_limit=25 * 1024 * 1024)
    controller.start()
    return controller
