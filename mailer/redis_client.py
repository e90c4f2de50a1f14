"""One Redis client per process for the app's REDIS_URL (progress counters, heartbeats, locks)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import redis
from flask import current_app

log = logging.getLogger(__name__)

_clients: dict[tuple[int, str], redis.Redis] = {}


def redis_key(name: str) -> str:
    """A Redis key in this installation's namespace (REDIS_PREFIX), so installations can share a server."""
    return f"{current_app.config['REDIS_PREFIX']}:{name}"


def get_redis() -> redis.Redis:
    """This process's client for REDIS_URL (a fork gets its own connection pool)."""
    url = current_app.config["REDIS_URL"]
    key = (os.getpid(), url)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
    return client


def best_effort(action: Callable[[], object]) -> object | None:
    """Run a Redis write that only helps (progress, hints); a Redis outage must not stop the caller."""
    try:
        return action()
    except redis.RedisError as exc:
        log.warning("redis unavailable, carrying on without it: %s", exc)
        return None
