"""Rate limits on subscribing: per client IP and per address, counted in Redis by Flask-Limiter.

The limits are read from the app config at each call and the keys carry the app's
RATELIMIT_KEY_PREFIX, so every web process and every app (each test has its own) counts
in its own shared Redis buckets.
"""

from __future__ import annotations

from flask import current_app
from limits import parse_many

from ..extensions import limiter


def _allow(setting: str, scope: str, key: str) -> bool:
    """Count one hit against every limit in config ``setting``; False when any is exhausted."""
    if not limiter.enabled:
        return True
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "mailer")
    results = [limiter.limiter.hit(item, prefix, scope, key) for item in parse_many(current_app.config[setting])]
    return all(results)


def allow_subscribe_from(ip: str) -> bool:
    """One subscribe request from ``ip`` (the form, the widget and the API share the budget)."""
    return _allow("RATELIMIT_SUBSCRIBE_IP", "subscribe-ip", ip or "unknown")


def allow_confirmation_to(address: str) -> bool:
    """One email to ``address`` (the normalised address, compared without case)."""
    return _allow("RATELIMIT_CONFIRM_ADDRESS", "confirm-address", address.lower())
