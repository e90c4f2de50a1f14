"""Start, pause, resume, cancel and retry a digest that is going out: the services CLI and console call.

Each state change is a conditional ``UPDATE ... WHERE status IN (...)`` with its audit entry in
the same transaction, so two staff members (or staff and the engine) racing on one digest get
one clear winner. Doorbells (send tasks) are rung only after the commit, by task name, so
this module never imports the tasks.
"""

from __future__ import annotations

import logging
import math

from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from ..extensions import db
from ..models import AuditEntry, Delivery, DeliveryStatus, Digest, DigestStatus, utcnow

log = logging.getLogger(__name__)

SEND_TASK = "mailer.sending.send"


class SendingError(ValueError):
    """A control action that does not apply to the digest as it is; the message says why."""


def ring(digest_id: int, deliveries: int) -> int:
    """Queue enough send tasks for ``deliveries`` (one per SEND_BATCH_SIZE); return how many.

    The broker is only a doorbell: when it is away, the sweep rings again once it is back.
    """
    count = max(1, math.ceil(deliveries / current_app.config["SEND_BATCH_SIZE"]))
    return doorbell(SEND_TASK, [digest_id], count)


def doorbell(task: str, args: list[object], count: int = 1) -> int:
    """Queue ``count`` copies of a task by name; 0 (logged) when the broker is away."""
    celery = current_app.extensions["celery"]
    try:
        with celery.producer_or_acquire() as producer:
            for _ in range(count):
                celery.send_task(task, args=args, producer=producer)
    except (BrokerError, RedisError, OSError) as exc:
        log.warning("could not queue %s%s (beat will): %s", task, args, exc)
        return 0
    return count


def _digest(digest_id: int) -> Digest:
    """The digest, or SendingError when there is none."""
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise SendingError(f"no digest {digest_id}")
    return digest


def _audit(actor: str, action: str, digest_id: int, detail: dict | None = None) -> None:
    """Add the audit entry for a control action to the current transaction."""
    db.session.add(AuditEntry(actor=actor, action=action, target=f"digest:{digest_id}", detail=detail))


def pause(digest_id: int, actor: str) -> None:
    """Stop claiming new deliveries; messages already claimed finish going out."""
    digest = _digest(digest_id)
    changed = db.session.execute(
        db.update(Digest)
        .where(Digest.id == digest.id, Digest.status.in_((DigestStatus.QUEUED, DigestStatus.SENDING)))
        .values(status=DigestStatus.PAUSED, paused_reason=f"paused by {actor}")
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise SendingError(f"digest {digest_id} is {digest.status}: only a digest going out can be paused")
    _audit(actor, "digest.pause", digest_id)
    db.session.commit()


def resume(digest_id: int, actor: str) -> int:
    """Carry on sending a paused digest (its error count starts again); return the send tasks queued."""
    digest = _digest(digest_id)
    changed = db.session.execute(
        db.update(Digest)
        .where(Digest.id == digest.id, Digest.status == DigestStatus.PAUSED)
        .values(
            status=db.case((Digest.started_at.is_(None), DigestStatus.QUEUED), else_=DigestStatus.SENDING),
            paused_reason=None,
            sender_errors=0,
        )
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise SendingError(f"digest {digest_id} is {digest.status}: only a paused digest can be resumed")
    _audit(actor, "digest.resume", digest_id)
    db.session.commit()
    return ring(digest_id, _count(digest_id, DeliveryStatus.QUEUED))


def cancel(digest_id: int, actor: str) -> int:
    """Stop a digest for good; deliveries not yet claimed become cancelled. Return how many.

    Its content is no longer claimed, so the next digest carries it (also to those who got this one).
    """
    digest = _digest(digest_id)
    changed = db.session.execute(
        db.update(Digest)
        .where(
            Digest.id == digest.id,
            Digest.status.in_(
                (
                    DigestStatus.SCHEDULED,
                    DigestStatus.PREPARING,
                    DigestStatus.QUEUED,
                    DigestStatus.SENDING,
                    DigestStatus.PAUSED,
                )
            ),
        )
        .values(status=DigestStatus.CANCELLED)
    )
    if changed.rowcount != 1:
        db.session.rollback()
        raise SendingError(f"digest {digest_id} is {digest.status}: it can no longer be cancelled")
    stopped = db.session.execute(
        db.update(Delivery)
        .where(Delivery.digest_id == digest_id, Delivery.status == DeliveryStatus.QUEUED)
        .values(status=DeliveryStatus.CANCELLED, updated_at=utcnow())
    ).rowcount
    _audit(actor, "digest.cancel", digest_id, {"deliveries_cancelled": stopped})
    db.session.commit()
    return stopped


def retry_failed(digest_id: int, actor: str) -> int:
    """Queue the digest's failed deliveries again with fresh attempts; return how many."""
    digest = _digest(digest_id)
    if digest.is_test or digest.status in (DigestStatus.SCHEDULED, DigestStatus.PREPARING, DigestStatus.CANCELLED):
        raise SendingError(
            f"digest {digest_id} is {'a test copy' if digest.is_test else digest.status}: nothing to retry"
        )
    again = db.session.execute(
        db.update(Delivery)
        .where(Delivery.digest_id == digest_id, Delivery.status == DeliveryStatus.FAILED)
        .values(status=DeliveryStatus.QUEUED, attempts=0, next_attempt_at=None, updated_at=utcnow())
    ).rowcount
    if not again:
        db.session.rollback()
        raise SendingError(f"digest {digest_id} has no failed deliveries")
    db.session.execute(
        db.update(Digest)
        .where(Digest.id == digest_id, Digest.status.in_((DigestStatus.SENT, DigestStatus.FAILED)))
        .values(status=DigestStatus.SENDING)
    )
    _audit(actor, "digest.retry_failed", digest_id, {"deliveries": again})
    db.session.commit()
    if db.session.get(Digest, digest_id).status != DigestStatus.PAUSED:
        ring(digest_id, again)
    return again


def _count(digest_id: int, status: str) -> int:
    """How many of the digest's deliveries are in ``status``."""
    return db.session.execute(
        db.select(db.func.count())
        .select_from(Delivery)
        .where(Delivery.digest_id == digest_id, Delivery.status == status)
    ).scalar_one()
