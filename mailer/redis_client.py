"""One Redis client per process for the app's REDIS_URL (progress counters, heartbeats, locks)."""

from __future__ import annotations

import os

import redis
from flask import current_app

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
