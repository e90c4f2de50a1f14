"""The ``bounces`` process: an SMTP server (aiosmtpd) a relay forwards the bounce domain to.

It accepts mail only for our bounce addresses (BOUNCE_ADDRESS and its VERP variants) and the
``mailto:`` unsubscribe address; any other recipient gets 550, so it is never a relay. Each
message is queued for a worker (``intake.queue_message``) before the 250; when the broker
cannot take it, the answer is 451 and the sending server tries again later.
"""

from __future__ import annotations

import asyncio

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from flask import Flask

from ..mail.outbox import envelope_sender
from .intake import queue_message
from .parse import MAX_MESSAGE


class BounceHandler:
    """aiosmtpd handler: our addresses only, each message queued before it is accepted."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        with app.app_context():
            local, _, self.domain = envelope_sender().lower().rpartition("@")
            self.local = local
            self.mailto = (app.config.get("UNSUBSCRIBE_MAILTO") or "").lower()

    def ours(self, address: str) -> bool:
        """A bounce address (plain or VERP) or the unsubscribe address."""
        local, _, domain = address.lower().rpartition("@")
        if address.lower() == self.mailto:
            return True
        return domain == self.domain and (local == self.local or local.startswith(self.local + "+"))

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        """Accept our addresses; refuse every other one (not a relay)."""
        if not self.ours(address):
            return "550 5.1.1 No such recipient here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Queue the message for a worker; 451 when that is not possible now."""
        data = envelope.original_content or envelope.content or b""
        raw = data if isinstance(data, bytes) else data.encode("utf-8", "surrogateescape")
        try:
            await asyncio.get_running_loop().run_in_executor(None, self._queue, raw, list(envelope.rcpt_tos))
        except Exception as exc:  # noqa: BLE001 - any failure to queue is the sender's cue to retry
            self.app.logger.warning("bounce not queued, asked the sender to retry: %s", exc)
            return "451 4.3.0 Cannot take this message now, try again later"
        return "250 OK queued"

    def _queue(self, raw: bytes, recipients: list[str]) -> None:
        """Queue inside the app context (the task is named in the app's Celery)."""
        with self.app.app_context():
            queue_message(raw, recipients)


def start_listener(app: Flask, host: str, port: int) -> Controller:
    """Start the SMTP listener in a background thread; ``.stop()`` ends it."""
    controller = Controller(BounceHandler(app), hostname=host, port=port, data_size_limit=MAX_MESSAGE * 5)
    controller.start()
    return controller
