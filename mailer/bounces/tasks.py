"""Celery tasks: read one message that came back (see intake.py); poll the bounce mailbox (see mailbox.py)."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from . import intake, mailbox


@shared_task(name=intake.PROCESS_TASK, acks_late=True)
def process_message(payload: str, sent_to: list[str]) -> str:
    """Understand and handle one bounce, complaint, auto-reply or unsubscribe by mail (idempotent)."""
    outcome = intake.process_message(payload, sent_to)
    current_app.logger.info("message that came back: %s", outcome)
    return outcome


@shared_task(name=mailbox.POLL_TASK)
def poll_mailbox() -> None:
    """Queue what came back to BOUNCE_MAILBOX_URL; a mailbox that cannot be read now waits for the next beat."""
    try:
        queued = mailbox.poll_mailbox()
    except mailbox.MailboxError as exc:
        current_app.logger.warning("bounce mailbox not read, trying again at the next interval: %s", exc)
        return
    if queued is None:
        current_app.logger.info("bounce mailbox: another poll is running, this one skipped")
    elif queued:
        current_app.logger.info("bounce mailbox: %d messages queued", queued)
