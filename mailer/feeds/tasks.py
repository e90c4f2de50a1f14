"""Celery tasks for feeds: they take plain ids, and the service does the work."""

from __future__ import annotations

from celery import shared_task

from . import service


@shared_task(name="mailer.feeds.fetch_due")
def fetch_due() -> None:
    """Beat, every minute: fetch the feeds whose time has come (each claimed, so once)."""
    service.fetch_due()


@shared_task(name=service.FETCH_TASK)
def fetch(feed_id: int, actor: str = service.ACTOR) -> None:
    """Fetch one feed now (the console's "Fetch now"); a feed removed meanwhile is nothing to do."""
    if service.find_feed(feed_id) is not None:
        service.fetch_feed(feed_id, actor=actor)
