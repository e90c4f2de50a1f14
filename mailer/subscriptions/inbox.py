"""Subscribe requests pass through a Redis list: the web answers at once, the worker records them in batches.

The web process checks the input, then makes one Redis call (``limits.count``): the rate limits
and, within them, the request appended to the inbox. The first request after the inbox went
quiet sets a doorbell key and queues one ``process_requests`` task; requests arriving while a
worker drains the inbox only append. So the answer costs the same whatever the address's state
(the web never reads the subscriber), and a burst of requests is recorded 100 to a transaction.

Draining: one worker at a time (a Redis lock) reads up to ``BATCH`` requests from the head,
records them with ``service.record_requests`` in one transaction, then removes them from the
list. A worker killed in between leaves them at the head, recorded again by the next drain: at
worst a second confirmation email, never a lost request. Beat also runs the drain every
SWEEP_INTERVAL, in case a doorbell's task was lost. The request keeps the time and consent
wording of the moment it was made, for the consent log.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from ..models import Topic
from ..redis_client import get_redis, redis_key
from .limits import Verdict, address_counters, client_counters, count
from .service import Consent, Received, SubscriptionRequest, record_requests

#: Requests recorded per transaction.
BATCH = 200
#: How long the drain lock lives without being renewed; a batch takes well under a second.
LOCK_SECONDS = 60
#: The doorbell expires on its own, so a lost task delays requests by this much at most (beat drains too).
DOORBELL_MS = 30_000
#: The task that drains the inbox, by name (the web never imports tasks).
PROCESS_TASK = "mailer.subscriptions.process_requests"


def _keys() -> tuple[str, str, str]:
    """The inbox list, its doorbell and the drain lock."""
    return redis_key("subscribe-inbox"), redis_key("subscribe-inbox:doorbell"), redis_key("subscribe-inbox:lock")


def check_client(ip: str) -> Verdict:
    """Count a request that carries nothing to record (bad input, a bot) against the client's budget."""
    return count(client_counters(ip))[0]


def submit(req: SubscriptionRequest, consent: Consent) -> Verdict:
    """Count ``req`` against the limits and, when within them, hand it to the worker; one Redis round trip."""
    inbox, doorbell, _ = _keys()
    payload = json.dumps(
        {
            "email": req.email,
            "name": req.name,
            "topics": int(req.topics),
            "source": consent.source,
            "ip": consent.ip,
            "user_agent": consent.user_agent,
            "version": current_app.config["CONSENT_VERSION"],
            "at": time.time(),
        },
        separators=(",", ":"),
    )
    verdict, ring = count(
        client_counters(consent.ip or ""), address_counters(req.email), (inbox, doorbell, payload, DOORBELL_MS)
    )
    if ring:
        current_app.extensions["celery"].send_task(PROCESS_TASK)
    return verdict


def process_inbox() -> int:
    """Record every request waiting in the inbox, unless another worker is at it; return how many."""
    client = get_redis()
    inbox, doorbell, lock_key = _keys()
    done = 0
    while True:
        lock = client.lock(lock_key, timeout=LOCK_SECONDS)
        if not lock.acquire(blocking=False):
            return done
        try:
            while raw := client.lrange(inbox, 0, BATCH - 1):
                record_requests([r for r in map(_received, raw) if r is not None])
                client.ltrim(inbox, len(raw), -1)
                lock.reacquire()
                done += len(raw)
            # Requests from now on ring again; one that came before this is seen by the check below.
            client.delete(doorbell)
        finally:
            lock.release()
        if not client.llen(inbox):
            return done


def _received(raw: bytes) -> Received | None:
    """A request as the web appended it (None for an entry that cannot be read: it is skipped)."""
    try:
        data: dict[str, Any] = json.loads(raw)
        return Received(
            SubscriptionRequest(email=data["email"], name=data["name"], topics=Topic(data["topics"])),
            Consent(source=data["source"], ip=data["ip"], user_agent=data["user_agent"]),
            version=data["version"],
            at=datetime.fromtimestamp(data["at"], UTC),
        )
    except (ValueError, KeyError, TypeError):
        current_app.logger.error("unreadable subscribe request skipped: %r", raw[:200])
        return None
