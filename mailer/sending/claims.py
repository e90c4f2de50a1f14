"""The send engine's narrow window on the database: claim, record, release, renew, expire.

Every statement here runs on its own (autocommit): a claim is one ``UPDATE ... RETURNING``
that moves rows from ``queued`` to ``sending`` under a claim token, and a chunk's outcomes
are one ``UPDATE`` (``... FROM unnest(arrays)`` on PostgreSQL). Only the holder of a claim
token can record outcomes for the rows it claimed, so a row the sweep took back and another
sender claimed is never written twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Integer, Text, bindparam, case, text

from ..extensions import db
from ..models import Delivery, DeliveryStatus, Digest, DigestStatus, Subscriber, Timestamp

#: Digest statuses in which deliveries may be claimed.
ACTIVE = (DigestStatus.QUEUED, DigestStatus.SENDING)


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery with what sending it needs."""

    id: int
    subscriber_id: int
    email: str
    topics: int
    attempts: int
    subscriber_status: str
    link_version: int


@dataclass(frozen=True)
class Chunk:
    """The deliveries one claim took, and the digest's state at that moment."""

    rows: list[Claimed]
    digest_status: str | None
    sender_errors: int


@dataclass(frozen=True)
class Outcome:
    """What became of one claimed delivery; ``status`` queued means "try again at ``retry_at``"."""

    id: int
    status: str
    code: int | None = None
    reply: str | None = None
    message_id: str | None = None
    sent_at: datetime | None = None
    retry_at: datetime | None = None
    #: 1 when the attempt does not count (released without trying, or our side failed).
    refund: int = 0


#: PostgreSQL: one fixed statement claims a chunk and brings back, with each row, the
#: subscriber's status and link version and the digest's state. The rows are picked once in a
#: MATERIALIZED CTE (an ``IN (subquery ... LIMIT)`` may be planned to run more than once), locked
#: with SKIP LOCKED so concurrent senders take disjoint rows without waiting for each other.
CLAIM_ON_POSTGRESQL = text(
    """
    WITH picked AS MATERIALIZED (
        SELECT id FROM deliveries
        WHERE digest_id = :digest AND status = 'queued' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
          AND EXISTS (SELECT 1 FROM digests WHERE id = :digest AND status IN ('queued', 'sending'))
        ORDER BY id LIMIT :size
        FOR UPDATE SKIP LOCKED
    )
    UPDATE deliveries AS d
    SET status = 'sending', claimed_by = :token, claimed_at = :now, attempts = d.attempts + 1, updated_at = :now
    FROM picked, subscribers AS s, digests AS g
    WHERE d.id = picked.id AND s.id = d.subscriber_id AND g.id = d.digest_id
    RETURNING d.id, d.subscriber_id, d.email, d.topics, d.attempts, s.status, s.link_version, g.status,
              g.sender_errors
    """
)


def claim(conn: Connection, digest_id: int, token: str, size: int, now: datetime) -> Chunk:
    """Move up to ``size`` due, queued deliveries of an active digest to ``sending`` under ``token``."""
    if conn.dialect.name == "postgresql":
        params = dict(digest=digest_id, token=token, size=size, now=now)
        returned = sorted(conn.execute(CLAIM_ON_POSTGRESQL, params).all())
        if returned:
            return Chunk([Claimed(*r[:7]) for r in returned], returned[0][7], returned[0][8])
        return Chunk([], *_digest_state(conn, digest_id))
    pick = (
        db.select(Delivery.id)
        .where(
            Delivery.digest_id == digest_id,
            Delivery.status == DeliveryStatus.QUEUED,
            (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now),
        )
        .order_by(Delivery.id)
        .limit(size)
    )
    claiming = dict(
        status=DeliveryStatus.SENDING, claimed_by=token, claimed_at=now, attempts=Delivery.attempts + 1, updated_at=now
    )
    delivery_columns = (Delivery.id, Delivery.subscriber_id, Delivery.email, Delivery.topics, Delivery.attempts)
    # SQLite: writers take turns on the whole database, so the claim needs no row locks; the
    # subscribers' status and link version come in a second statement (RETURNING cannot join).
    active = db.select(Digest.id).where(Digest.id == digest_id, Digest.status.in_(ACTIVE)).exists()
    returned = conn.execute(
        db.update(Delivery)
        .where(Delivery.id.in_(pick.scalar_subquery()), active)
        .values(**claiming)
        .returning(*delivery_columns)
    ).all()
    people = {}
    if returned:
        ids = [r.subscriber_id for r in returned]
        query = db.select(Subscriber.id, Subscriber.status, Subscriber.link_version).where(Subscriber.id.in_(ids))
        people = {r.id: (r.status, r.link_version) for r in conn.execute(query)}
    rows = [Claimed(*r, *people.get(r.subscriber_id, ("unknown", 0))) for r in sorted(returned)]
    return Chunk(rows, *_digest_state(conn, digest_id))


def _digest_state(conn: Connection, digest_id: int) -> tuple[str | None, int]:
    """The digest's status (None when there is no such digest) and its sender-error count."""
    row = conn.execute(db.select(Digest.status, Digest.sender_errors).where(Digest.id == digest_id)).first()
    return (row[0], row[1]) if row else (None, 0)


def record(conn: Connection, token: str, outcomes: list[Outcome], now: datetime, digest_id: int) -> str | None:
    """Write a chunk's outcomes in one statement (rows this token no longer holds are left alone).

    On PostgreSQL the same statement returns the digest's status, so a sender holding a chunk
    claimed ahead learns of a pause or a cancel without asking; elsewhere it returns None.
    """
    if not outcomes:
        return None
    if conn.dialect.name == "postgresql":
        return _record_from_arrays(conn, token, outcomes, now, digest_id)
    statement = (
        db.update(Delivery.__table__)
        .where(
            Delivery.id == bindparam("oid"),
            Delivery.claimed_by == token,
            # No IN (...) here: expanding parameters cannot go into an executemany.
            (Delivery.status == DeliveryStatus.SENDING) | (Delivery.status == DeliveryStatus.QUEUED),
        )
        .values(
            status=bindparam("ostatus"),
            last_smtp_code=case((bindparam("ocode", type_=Integer).is_(None), Delivery.last_smtp_code),
                                else_=bindparam("ocode", type_=Integer)),
            last_smtp_reply=case((bindparam("oreply", type_=Text).is_(None), Delivery.last_smtp_reply),
                                 else_=bindparam("oreply", type_=Text)),
            message_id=bindparam("omid"),
            sent_at=bindparam("osent", type_=Timestamp),
            next_attempt_at=bindparam("oretry", type_=Timestamp),
            attempts=Delivery.attempts - bindparam("orefund", type_=Integer),
            updated_at=now,
        )
    )  # fmt: skip
    params = [
        dict(oid=o.id, ostatus=o.status, ocode=o.code, oreply=o.reply, omid=o.message_id, osent=o.sent_at,
             oretry=o.retry_at, orefund=o.refund)
        for o in outcomes
    ]  # fmt: skip
    conn.execute(statement, params)
    return None


#: PostgreSQL: a chunk's outcomes as eight arrays, unnested into rows. The statement text never
#: changes, so it is parsed and planned once per connection however many rows a chunk has.
RECORD_FROM_ARRAYS = text(
    """
    WITH recorded AS (UPDATE deliveries AS d SET
        status = o.status,
        last_smtp_code = COALESCE(o.code, d.last_smtp_code),
        last_smtp_reply = COALESCE(o.reply, d.last_smtp_reply),
        message_id = o.message_id,
        sent_at = o.sent_at,
        next_attempt_at = o.retry_at,
        attempts = d.attempts - o.refund,
        updated_at = :now
    FROM unnest(
        CAST(:ids AS integer[]), CAST(:statuses AS text[]), CAST(:codes AS integer[]), CAST(:replies AS text[]),
        CAST(:message_ids AS text[]), CAST(:sent AS timestamptz[]), CAST(:retry AS timestamptz[]),
        CAST(:refunds AS integer[])
    ) AS o(id, status, code, reply, message_id, sent_at, retry_at, refund)
    WHERE d.id = o.id AND d.claimed_by = :token AND d.status IN ('sending', 'queued')
    RETURNING 1)
    SELECT status FROM digests WHERE id = :digest
    """
)


def _record_from_arrays(conn: Connection, token: str, outcomes: list[Outcome], now: datetime, digest_id: int) -> str:
    """PostgreSQL: one ``UPDATE ... FROM unnest(...)`` for the whole chunk; the digest's status."""
    return conn.execute(
        RECORD_FROM_ARRAYS,
        dict(
            ids=[o.id for o in outcomes],
            statuses=[o.status for o in outcomes],
            codes=[o.code for o in outcomes],
            replies=[o.reply for o in outcomes],
            message_ids=[o.message_id for o in outcomes],
            sent=[o.sent_at for o in outcomes],
            retry=[o.retry_at for o in outcomes],
            refunds=[o.refund for o in outcomes],
            token=token,
            now=now,
            digest=digest_id,
        ),
    ).scalar_one()


def renew(conn: Connection, tokens: list[str], now: datetime) -> int:
    """Extend the lease of every row still ``sending`` under one of ``tokens``."""
    if not tokens:
        return 0
    return conn.execute(
        db.update(Delivery)
        .where(Delivery.claimed_by.in_(tokens), Delivery.status == DeliveryStatus.SENDING)
        .values(claimed_at=now, updated_at=now)
    ).rowcount


def expire_leases(conn: Connection, lease: float, max_attempts: int, now: datetime) -> int:
    """Rows whose sender stopped renewing: back to the queue, or failed once out of attempts."""
    expired = (Delivery.status == DeliveryStatus.SENDING) & (Delivery.claimed_at < now - timedelta(seconds=lease))
    gave_up = conn.execute(
        db.update(Delivery)
        .where(expired, Delivery.attempts >= max_attempts)
        .values(status=DeliveryStatus.FAILED, last_smtp_reply="not sent: the sending worker was lost on every attempt",
                updated_at=now)
    ).rowcount  # fmt: skip
    back = conn.execute(
        db.update(Delivery).where(expired).values(status=DeliveryStatus.QUEUED, next_attempt_at=None, updated_at=now)
    ).rowcount
    return gave_up + back


def cancel_leftovers(conn: Connection, now: datetime) -> int:
    """Queued rows of cancelled digests (a retry written after the cancel) become cancelled."""
    cancelled = db.select(Digest.id).where(Digest.status == DigestStatus.CANCELLED)
    return conn.execute(
        db.update(Delivery)
        .where(Delivery.status == DeliveryStatus.QUEUED, Delivery.digest_id.in_(cancelled.scalar_subquery()))
        .values(status=DeliveryStatus.CANCELLED, updated_at=now)
    ).rowcount


def claimable(conn: Connection, digest_id: int, now: datetime) -> int:
    """How many of the digest's deliveries are queued and due."""
    return conn.execute(
        db.select(db.func.count())
        .select_from(Delivery)
        .where(
            Delivery.digest_id == digest_id,
            Delivery.status == DeliveryStatus.QUEUED,
            (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now),
        )
    ).scalar_one()


def finish_if_done(conn: Connection, digest_id: int, now: datetime) -> bool:
    """Mark an active digest sent when none of its deliveries is queued or sending; True if this call did."""
    pending = db.select(Delivery.id).where(
        Delivery.digest_id == digest_id, Delivery.status.in_((DeliveryStatus.QUEUED, DeliveryStatus.SENDING))
    )
    done = conn.execute(
        db.update(Digest)
        .where(Digest.id == digest_id, Digest.status.in_(ACTIVE), ~pending.exists())
        .values(status=DigestStatus.SENT, sent_at=now)
    )
    return done.rowcount == 1


def mark_started(conn: Connection, digest_id: int, now: datetime) -> None:
    """A queued digest whose first delivery was claimed is now sending."""
    conn.execute(
        db.update(Digest)
        .where(Digest.id == digest_id, Digest.status == DigestStatus.QUEUED)
        .values(status=DigestStatus.SENDING, started_at=now)
    )


def add_sender_error(conn: Connection, digest_id: int, reason: str, pause_after: int) -> bool:
    """Count one error about our side; pause the digest when they reach ``pause_after``. True if it paused."""
    conn.execute(db.update(Digest).where(Digest.id == digest_id).values(sender_errors=Digest.sender_errors + 1))
    paused = conn.execute(
        db.update(Digest)
        .where(Digest.id == digest_id, Digest.status.in_(ACTIVE), Digest.sender_errors >= pause_after)
        .values(status=DigestStatus.PAUSED, paused_reason=reason[:1000])
    )
    return paused.rowcount == 1


def clear_sender_errors(conn: Connection, digest_id: int) -> None:
    """A message went out: the errors about our side are no longer consecutive."""
    conn.execute(db.update(Digest).where(Digest.id == digest_id, Digest.sender_errors != 0).values(sender_errors=0))
