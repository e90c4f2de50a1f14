"""Send a batch of a digest's deliveries: claim a chunk, send each message, record the chunk.

The loop holds one database connection (autocommit) and this process's SMTP connection for
the whole batch. Per recipient it only builds bytes from the variant's pre-encoded parts and
talks SMTP; per chunk it runs two statements (claim, record). Outcomes:

- accepted by the server: ``sent`` with its Message-ID;
- refused for the recipient (5xx at RCPT): ``bounced``, and the address is suppressed;
- refused for this message (5xx at DATA) or not sendable at all: ``failed`` with the reason;
- refused for now (4xx, dropped connection): back to ``queued`` until its backoff passes,
  ``failed`` once SEND_MAX_ATTEMPTS were used;
- a failure about our side (cannot connect, TLS, AUTH, MAIL FROM refused): the message and the
  rest of the chunk go back to the queue without spending an attempt; the digest counts the
  error and pauses itself after SEND_PAUSE_AFTER in a row.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from flask import current_app
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ..bounces.verp import DELIVERY, verp_maker
from ..extensions import db
from ..mail import (
    MessageFactory,
    PermanentSMTPError,
    SMTPError,
    SMTPTransport,
    TransientSMTPError,
    get_transport,
    send_message,
)
from ..mail.message import parse_mailbox
from ..models import DeliveryStatus, DigestStatus, utcnow
from ..redis_client import best_effort, get_redis, redis_key
from ..subscriptions.links import list_unsubscribe_header, personal_links
from ..subscriptions.service import record_hard_bounce
from . import claims
from .claims import Claimed, Outcome
from .leases import keeper_for

log = logging.getLogger(__name__)

#: Builds the message factory of one topic variant of a digest: ``variants(digest_id, topics)``.
VariantSource = Callable[[int, int], MessageFactory]

#: SMTP phases where a failure is about our side (relay, credentials, sender), not the recipient.
SENDER_PHASES = ("connect", "auth", "mail")

#: Longest pause between two tries after an error about our side.
MAX_BACKOFF = 30.0

#: Seconds between two tries to record a chunk's outcomes while the database is away.
RECORD_RETRY = 0.25


@dataclass(frozen=True)
class Settings:
    """The engine's settings, read once per batch from the app config."""

    batch: int
    chunk: int
    connections: int
    lease: float
    max_attempts: int
    retry_delay: float
    pause_after: int

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        """Take SEND_* from ``config``."""
        return cls(
            batch=config["SEND_BATCH_SIZE"],
            chunk=config["SEND_CHUNK_SIZE"],
            connections=config["SEND_CONNECTIONS"],
            lease=config["SEND_LEASE"],
            max_attempts=config["SEND_MAX_ATTEMPTS"],
            retry_delay=config["SEND_RETRY_DELAY"],
            pause_after=config["SEND_PAUSE_AFTER"],
        )


@dataclass
class BatchReport:
    """What one batch did."""

    token: str
    sent: int = 0
    finished: int = 0
    sender_errors: int = 0
    done: bool = False
    paused: bool = False
    outcomes: dict[str, int] = field(default_factory=dict)


def claim_token() -> str:
    """A name for one batch's claims: host, process and a random part (at most 64 characters)."""
    return f"{socket.gethostname()[:36]}:{os.getpid()}:{secrets.token_hex(6)}"


def progress_key(digest_id: int) -> str:
    """The Redis key a sender touches after each chunk, so the sweep knows the digest is moving."""
    return redis_key(f"sending:{digest_id}:progress")


def send_batch(digest_id: int, variants: VariantSource) -> BatchReport:
    """Send up to SEND_BATCH_SIZE of the digest's deliveries, a chunk at a time.

    On PostgreSQL the next chunk is claimed on a second connection while this one goes out, so
    the sender never waits for the database between chunks. A chunk claimed ahead that is not
    sent (the batch ends, the digest pauses) is handed back at once.
    """
    settings = Settings.from_config(current_app.config)
    report = BatchReport(token=claim_token())
    keeper = keeper_for(db.engine, settings.lease)
    with (
        _Database(db.engine) as database,
        _Database(db.engine) as ahead,
        keeper.holding(report.token),
        ThreadPoolExecutor(1, thread_name_prefix="mailer-claim") as claimer,
        ThreadPoolExecutor(settings.connections, thread_name_prefix="mailer-send") as senders,
    ):
        overlap = db.engine.dialect.name == "postgresql"

        def claim(size: int) -> Future[claims.Chunk]:
            """Claim the next chunk: on the second connection in the background, or here and now."""
            if overlap:
                return claimer.submit(claims.claim, ahead.conn, digest_id, report.token, size, utcnow())
            done: Future[claims.Chunk] = Future()
            done.set_result(claims.claim(database.conn, digest_id, report.token, size, utcnow()))
            return done

        # Chunks claimed and not sent yet; whatever is left here when the batch ends goes back unsent.
        unsent = [claim(min(settings.chunk, settings.batch))]
        try:
            new_sender = partial(_ChunkSender, variants, digest_id, settings, senders)
            _send_chunks(digest_id, settings, new_sender, report, database, claim, unsent)
        finally:
            for future in unsent:
                _hand_back(database, report.token, digest_id, future)
    return report


def _send_chunks(
    digest_id: int,
    settings: Settings,
    new_sender: Callable[[], _ChunkSender],
    report: BatchReport,
    database: _Database,
    claim: Callable[[int], Future[claims.Chunk]],
    unsent: list[Future[claims.Chunk]],
) -> None:
    """The batch's loop: take the claimed chunk, claim the next, send, record, watch for errors about us."""
    backoff, requeued = 0.0, False
    while unsent:
        chunk = unsent.pop().result()
        if not chunk.rows and requeued:
            # Claimed ahead while the last chunk still held the rows it then put back: look again.
            chunk = claim(min(settings.chunk, settings.batch - report.finished)).result()
        if not chunk.rows:
            report.done = chunk.digest_status in claims.ACTIVE and claims.finish_if_done(
                database.conn, digest_id, utcnow()
            )
            return
        if chunk.digest_status == DigestStatus.QUEUED:
            claims.mark_started(database.conn, digest_id, utcnow())
        room = settings.batch - report.finished - len(chunk.rows)
        if room > 0:
            unsent.append(claim(min(settings.chunk, room)))
        sender = new_sender()
        outcomes = sender.send(chunk.rows)
        status = _record(database, report.token, outcomes, settings, digest_id)
        _count(report, outcomes)
        requeued = any(o.status == DeliveryStatus.QUEUED for o in outcomes)
        best_effort(lambda: get_redis().set(progress_key(digest_id), int(time.time()), ex=int(settings.lease)))
        if sender.bounces:
            _suppress(sender.bounces)
        if sender.error is None:
            if chunk.sender_errors and report.sent:
                claims.clear_sender_errors(database.conn, digest_id)
            backoff = 0.0
        else:
            report.sender_errors += 1
            if claims.add_sender_error(database.conn, digest_id, _reason(sender.error), settings.pause_after):
                report.paused = True
                return
            backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
            time.sleep(backoff)
        if status is not None and status not in claims.ACTIVE:
            return  # paused or cancelled meanwhile: a chunk claimed ahead goes back unsent
    # The batch is full: close the digest if this was its last chunk (no one else may look).
    report.done = claims.finish_if_done(database.conn, digest_id, utcnow())


def _hand_back(database: _Database, token: str, digest_id: int, pending: Future[claims.Chunk]) -> None:
    """Return a chunk claimed ahead and never sent to the queue, spending no attempt."""
    try:
        rows = pending.result().rows
        claims.record(
            database.conn, token, [Outcome(r.id, DeliveryStatus.QUEUED, refund=1) for r in rows], utcnow(), digest_id
        )
    except SQLAlchemyError:
        log.warning("could not hand back claimed deliveries; their lease will")


class _Database:
    """The batch's autocommit connection, replaced by a new one after the database dropped it.

    (A dropped connection that SQLAlchemy reconnects comes back in a transaction, not in
    autocommit: what it then records would be rolled back at the end. A new one is safe.)
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    @property
    def conn(self) -> Connection:
        """The open connection, opened now when there is none."""
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def drop(self) -> None:
        """Forget the current connection (the database dropped it, or it is done)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except DBAPIError:
                conn.invalidate()

    def __enter__(self) -> _Database:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Give the connection back."""
        self.drop()


def _count(report: BatchReport, outcomes: list[Outcome]) -> None:
    """Add a chunk's outcomes to the report."""
    for outcome in outcomes:
        report.outcomes[outcome.status] = report.outcomes.get(outcome.status, 0) + 1
        if outcome.status != DeliveryStatus.QUEUED or not outcome.refund:
            report.finished += 1
        report.sent += outcome.status == DeliveryStatus.SENT


def _record(database: _Database, token: str, outcomes: list[Outcome], settings: Settings, digest_id: int) -> str | None:
    """Record the outcomes, waiting out a database outage: these messages already left."""
    deadline = time.monotonic() + max(600.0, 10 * settings.lease)
    while True:
        try:
            return claims.record(database.conn, token, outcomes, utcnow(), digest_id)
        except DBAPIError:
            if time.monotonic() > deadline:
                raise
            # The messages are out; until the rows say so, a resend would duplicate them. Retry
            # often on a new connection: once the database is back, the sweep may hand them on.
            database.drop()
            time.sleep(RECORD_RETRY)


def _suppress(bounces: list[tuple[int, str]]) -> None:
    """Suppress the addresses that were refused permanently."""
    for subscriber_id, reply in bounces:
        record_hard_bounce(subscriber_id, reply)


def _reason(error: SMTPError) -> str:
    """A sentence for staff about an error on our side."""
    if error.phase == "auth":
        return f"the SMTP server refused our login (authentication failed): {error}"
    if error.phase == "connect":
        return f"cannot reach the SMTP server: {error}"
    return f"the SMTP server refused our sender address: {error}"


class _ChunkSender:
    """Sends the messages of one claimed chunk over SEND_CONNECTIONS connections and says what became of each.

    Each connection has its own thread: while one waits for the server's reply, another builds
    and writes the next message.
    """

    def __init__(self, variants: VariantSource, digest_id: int, settings: Settings, pool: Executor) -> None:
        self.variants = variants
        self.digest_id = digest_id
        self.settings = settings
        self.pool = pool
        self.app = current_app._get_current_object()  # type: ignore[attr-defined]
        self.error: SMTPError | None = None
        self.bounces: list[tuple[int, str]] = []
        # Each message's own bounce address (VERP): the key and BOUNCE_ADDRESS bound once per chunk.
        self.bounce_address = verp_maker(DELIVERY)

    def send(self, rows: list[Claimed]) -> list[Outcome]:
        """Send the rows, split over the connections; after an error about our side, release the rest."""
        lanes = min(self.settings.connections, len(rows))
        if lanes <= 1:
            return self._in_turn(rows, get_transport(0))
        for topics in {row.topics for row in rows if row.subscriber_status == "confirmed"}:
            self.variants(self.digest_id, topics)  # rendered here, once, before the threads need it
        transports = [get_transport(lane) for lane in range(lanes)]
        parts = [self.pool.submit(self._in_context, rows[lane::lanes], transports[lane]) for lane in range(lanes)]
        return [outcome for part in parts for outcome in part.result()]

    def _in_context(self, rows: list[Claimed], transport: SMTPTransport) -> list[Outcome]:
        """``_in_turn`` on a sending thread, inside the app context the links need."""
        with self.app.app_context():
            return self._in_turn(rows, transport)

    def _in_turn(self, rows: list[Claimed], transport: SMTPTransport) -> list[Outcome]:
        """Send each row in turn on one connection; once any lane met an error about us, release the rest."""
        outcomes = []
        for row in rows:
            if self.error is not None:
                outcomes.append(Outcome(row.id, DeliveryStatus.QUEUED, refund=1))
                continue
            outcomes.append(self._one(row, transport))
        return outcomes

    def _one(self, row: Claimed, transport: SMTPTransport) -> Outcome:
        """Build and send one message."""
        if row.subscriber_status != "confirmed":
            return Outcome(row.id, DeliveryStatus.SKIPPED)
        factory = self.variants(self.digest_id, row.topics)
        try:
            recipient = parse_mailbox("to", row.email)[1]
            links = personal_links(row.subscriber_id, row.link_version)
            unsubscribe = list_unsubscribe_header(links["unsubscribe_url"])
            message_id = send_message(
                factory,
                recipient,
                links,
                list_unsubscribe=unsubscribe,
                transport=transport,
                envelope_from=self.bounce_address(row.id),
            )
        except ValueError as exc:
            # An address no header can carry (a non-ASCII local part would need SMTPUTF8): never sendable.
            return Outcome(row.id, DeliveryStatus.FAILED, reply=f"not sent: {exc}")
        except PermanentSMTPError as exc:
            return self._refused(row, exc)
        except TransientSMTPError as exc:
            return self._deferred(row, exc)
        return Outcome(row.id, DeliveryStatus.SENT, message_id=message_id, sent_at=utcnow())

    def _refused(self, row: Claimed, exc: PermanentSMTPError) -> Outcome:
        """A 5xx: a bounce when it was the recipient, our problem when it was us, else this message failed."""
        if exc.phase in SENDER_PHASES:
            self.error = exc
            return Outcome(row.id, DeliveryStatus.QUEUED, exc.code, exc.reply, refund=1)
        if exc.recipient_refused:
            self.bounces.append((row.subscriber_id, f"{exc.code} {exc.reply}"))
            return Outcome(row.id, DeliveryStatus.BOUNCED, exc.code, exc.reply)
        return Outcome(row.id, DeliveryStatus.FAILED, exc.code, exc.reply)

    def _deferred(self, row: Claimed, exc: TransientSMTPError) -> Outcome:
        """A 4xx or a lost connection: try again after a backoff, or give up after the last attempt."""
        if exc.phase in SENDER_PHASES:
            self.error = exc
            return Outcome(row.id, DeliveryStatus.QUEUED, exc.code, exc.reply, refund=1)
        if row.attempts >= self.settings.max_attempts:
            return Outcome(row.id, DeliveryStatus.FAILED, exc.code, exc.reply)
        delay = self.settings.retry_delay * 2 ** (row.attempts - 1)
        return Outcome(row.id, DeliveryStatus.QUEUED, exc.code, exc.reply, retry_at=_later(delay))


def _later(seconds: float) -> datetime:
    """The moment ``seconds`` from now."""
    return utcnow() + timedelta(seconds=seconds)
