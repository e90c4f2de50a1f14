"""Celery tasks for digests: they take plain ids, and the service does the work."""

from __future__ import annotations

from celery import shared_task

from ..sending.control import ring
from . import cadence, service


@shared_task(name="mailer.digests.send_test_copy")
def send_test_copy(digest_id: int) -> None:
    """Send a test digest's one copy."""
    service.send_test_copy(digest_id)


@shared_task(name="mailer.digests.release_scheduled")
def release_scheduled() -> None:
    """Beat, every 30 s: hand the scheduled digests whose time has come to the send engine."""
    for digest_id, deliveries in service.release_due().items():
        ring(digest_id, deliveries)


@shared_task(name="mailer.digests.run_cadence")
def run_cadence() -> None:
    """Beat, every minute: the digest cadence's review email and run, when their time has come."""
    cadence.tick()
