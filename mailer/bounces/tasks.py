"""Celery task that reads one message that came back (see intake.py)."""

from __future__ import annotations

from celery import shared_task
from flask import current_app

from . import intake


@shared_task(name=intake.PROCESS_TASK, acks_late=True)
def process_message(payload: str, sent_to: list[str]) -> str:
    """Understand and handle one bounce, complaint, auto-reply or unsubscribe by mail (idempotent)."""
    outcome = intake.process_message(payload, sent_to)
    current_app.logger.info("message that came back: %s", outcome)
    return outcome
