"""Celery tasks of the send engine: doorbells that carry only a digest id, and the sweep."""

from __future__ import annotations

from celery import Task, shared_task
from flask import current_app
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from . import engine
from . import sweep as sweeping

#: Errors of the database or the broker: the task tries again later instead of being dropped.
OUTAGES = (DBAPIError, RedisError, BrokerError, ConnectionError)


@shared_task(name="mailer.sending.send", bind=True, max_retries=None)
def send(self: Task, digest_id: int) -> None:
    """Send one batch of the digest's deliveries; on an outage, retry with backoff (the sweep backs this up)."""
    try:
        engine.send_batch(digest_id, current_app.extensions["mailer.variants"])
    except OUTAGES as exc:
        raise self.retry(exc=exc, countdown=min(60, 2 ** min(self.request.retries, 6))) from exc


@shared_task(name="mailer.sending.sweep")
def sweep() -> None:
    """Beat, every SWEEP_INTERVAL: release lost claims and ring stalled digests."""
    sweeping.sweep()
