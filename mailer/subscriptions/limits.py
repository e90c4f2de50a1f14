"""Rate limits on subscribing, counted in Redis by Flask-Limiter: per client network, mailbox and domain.

The limits are read from the app config at each call and the keys carry the app's
RATELIMIT_KEY_PREFIX, so every web process and every app (each test has its own) counts
in its own shared Redis buckets. A key never holds an address, a domain or an IP: it holds
a keyed hash (HMAC with SECRET_KEY) of it, so the Redis keyspace lists no one.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from functools import lru_cache

from flask import current_app
from limits import RateLimitItem, parse_many

from ..extensions import limiter

#: Gmail delivers ``a.b.c@``, ``abc@`` and ``abc@googlemail.com`` to one mailbox (Google documents
#: both), so for these domains dots and the domain name do not make another mailbox. Other providers
#: treat dots as significant, so they are kept there.
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
HASH_SIZE = 32


def mailbox_of(address: str) -> str:
    """The mailbox ``address`` delivers to: lower case, without a ``+tag``, Gmail's dots and alias domain."""
    local, _, domain = address.lower().rpartition("@")
    # Sub-addressing with "+" is near-universal, so victim+1@ and victim+2@ are one mailbox everywhere.
    local = local.split("+", 1)[0] or local
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), GMAIL_DOMAINS[0]
    return f"{local}@{domain}"


def client_network(ip: str) -> str:
    """The network one client controls: an IPv4 address itself, an IPv6 address its /64."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # One customer is given a whole /64 (often more): every address in it is the same client.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _bucket(scope: str, value: str) -> str:
    """The Redis name of ``value``'s bucket in ``scope``: a truncated HMAC, never the value itself."""
    secret = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(secret, f"{scope}\0{value}".encode(), hashlib.sha256).hexdigest()[:HASH_SIZE]


def _allow(setting: str, scope: str, value: str) -> bool:
    """Count one hit against every limit in config ``setting``; False when any is exhausted."""
    if not limiter.enabled:
        return True
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "mailer")
    key = _bucket(scope, value)
    results = [limiter.limiter.hit(item, prefix, scope, key) for item in _limits(current_app.config[setting])]
    return all(results)


@lru_cache(maxsize=16)
def _limits(spec: str) -> tuple[RateLimitItem, ...]:
    """The rate limits a setting names, parsed once (not on every request)."""
    return tuple(parse_many(spec))


def allow_subscribe_from(ip: str) -> bool:
    """One subscribe request from ``ip``'s network (the form, the widget and the API share the budget)."""
    return _allow("RATELIMIT_SUBSCRIBE_IP", "subscribe-ip", client_network(ip))


def allow_confirmation_to(address: str) -> bool:
    """One email to ``address``, counted against its mailbox and its domain (both, always)."""
    mailbox = mailbox_of(address)
    # Both buckets are hit on every request, so the work does not depend on which one is full.
    per_mailbox = _allow("RATELIMIT_CONFIRM_ADDRESS", "confirm-address", mailbox)
    per_domain = _allow("RATELIMIT_CONFIRM_DOMAIN", "confirm-domain", mailbox.rpartition("@")[2])
    return per_mailbox and per_domain
