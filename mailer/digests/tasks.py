"""Celery tasks for digests: they take plain ids, and the service does the work."""

from __future__ import annotations

from celery import Task, shared_task

from . import service

#: Seconds before the first retry of a batch whose sends failed transiently; doubles each time.
RETRY_DELAY = 30


@shared_task(name="mailer.digests.send_batch", bind=True, acks_late=True, max_retries=5)
def send_batch(self: Task, digest_id: int, delivery_ids: list[int]) -> None:
    """Send one batch; retry the transient failures with backoff, then give up on them."""
    retry = service.send_batch(digest_id, delivery_ids)
    if not retry:
        return
    if self.request.retries >= self.max_retries:
        service.give_up(digest_id, retry)
        return
    raise self.retry(args=(digest_id, retry), countdown=RETRY_DELAY * 2**self.request.retries)


@shared_task(name="mailer.digests.send_test_copy")
def send_test_copy(digest_id: int) -> None:
    """Send a test digest's one copy."""
    service.send_test_copy(digest_id)


@shared_task(name="mailer.digests.release_scheduled")
def release_scheduled() -> None:
    """Beat, every 30 s: queue the scheduled digests whose time has come."""
    for digest_id in service.release_due():
        enqueue_deliveries(digest_id)


def enqueue_deliveries(digest_id: int) -> None:
    """Queue one send task per batch of queued deliveries (call after the commit that made them)."""
    queued = False
    for batch in service.queued_batches(digest_id):
        send_batch.delay(digest_id, batch)
        queued = True
    if not queued:
        service.finish_if_done(digest_id)
