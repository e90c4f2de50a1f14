"""Worker heartbeat: beat schedules it, /healthz reports how long ago a worker ran it."""

from __future__ import annotations

import time

from celery import shared_task
from celery.signals import worker_ready

from ..redis_client import get_redis, redis_key

HEARTBEAT = "worker-heartbeat"


@shared_task(name="mailer.heartbeat")
def heartbeat() -> None:
    """Record that a worker is consuming tasks, with the time it did."""
    get_redis().set(redis_key(HEARTBEAT), f"{time.time():.3f}", ex=24 * 3600)


@worker_ready.connect
def announce_worker(**_: object) -> None:
    """A worker that just started queues a heartbeat, so health shows it at once, not after a minute."""
    heartbeat.delay()
