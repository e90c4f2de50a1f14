"""Celery tasks for meeting reminders: the service does the work, the send engine delivers."""

from __future__ import annotations

from celery import shared_task

from ..sending.control import ring
from . import service


@shared_task(name="mailer.reminders.send_due")
def send_due() -> None:
    """Beat, every 5 minutes: make the reminders that are due, then hand each to the send engine."""
    for digest_id, deliveries in service.send_due().items():
        ring(digest_id, deliveries)
