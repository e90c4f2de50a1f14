"""The send engine: every delivery goes out exactly once, through crashes, at the wire's speed.

The database is the source of truth and the broker only a doorbell. A send task carries a
digest id; it claims a chunk of queued deliveries (``claims.claim``), sends each message over
this process's SMTP connection, and records the chunk's outcomes in one statement. A claim is
a lease renewed by a thread while its process lives (``leases``); the sweep (``sweep``) puts
rows of a dead sender back in the queue and rings stalled digests again. ``control`` pauses,
resumes, cancels and retries. The engine knows deliveries, leases and transports, not what a
digest contains: it asks the ``variants`` source (given to ``init_app``) for each topic
variant's message factory.
"""

from __future__ import annotations

from collections import OrderedDict

from flask import Flask

from ..extensions import db
from ..mail import MessageFactory
from .engine import VariantSource

#: Topic variants kept per process: enough for every variant of a few digests going out at once.
CACHED_VARIANTS = 32


def init_app(app: Flask, variants: VariantSource) -> None:
    """Give the engine its source of message factories, cached per process and app."""
    cache: OrderedDict[tuple[int, int], MessageFactory] = OrderedDict()

    def cached(digest_id: int, topics: int) -> MessageFactory:
        """The factory for (digest, topics); a digest's content never changes once created."""
        key = (digest_id, topics)
        factory = cache.get(key)
        if factory is None:
            factory = cache[key] = variants(digest_id, topics)
            if len(cache) > CACHED_VARIANTS:
                cache.popitem(last=False)
            # Hold no session transaction while sending: a connection dropped meanwhile would
            # fail the task at its end, when the app context rolls the session back.
            db.session.close()
        return factory

    app.extensions["mailer.variants"] = cached
