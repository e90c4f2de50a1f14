"""Rate limits on subscribing, counted in Redis: per client network, mailbox and domain, in one round trip.

A subscribe request costs the web process one Redis call: a Lua script counts the client's
network, then (when that is within budget) the address's mailbox and domain, and only when all
are within budget appends the request to the inbox the worker records from (``inbox.py``).
The counters are fixed windows, as Flask-Limiter's default strategy, for the limits the
RATELIMIT_* settings name in ``limits`` notation ("3 per hour;10 per day").

A key never holds an address, a domain or an IP: it holds a keyed hash (HMAC with SECRET_KEY)
of it, so the Redis keyspace lists no one. Keys live under REDIS_PREFIX.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from flask import current_app
from limits import parse_many
from redis.commands.core import Script

from ..redis_client import get_redis, redis_key

#: Gmail delivers ``a.b.c@``, ``abc@`` and ``abc@googlemail.com`` to one mailbox (Google documents
#: both), so for these domains dots and the domain name do not make another mailbox. Other providers
#: treat dots as significant, so they are kept there.
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
HASH_SIZE = 32

# KEYS: the client's counters, then the address's counters, then the inbox list and its doorbell.
# ARGV: the number of client counters, the number of address counters, the request to append ("" for
# none), the doorbell's lifetime in ms, then amount and window (seconds) of each counter in KEYS' order.
# Returns {verdict, ring}: verdict 0 accepted, 1 client over budget (nothing else counted), 2 mailbox
# or domain over budget (both counted always, so the work does not tell which one is full); ring is 1
# when this request set the doorbell (no worker was told about the inbox yet).
_SCRIPT = """
local clients, addresses = tonumber(ARGV[1]), tonumber(ARGV[2])
local function hit(first, last)
  local over = false
  for i = first, last do
    local count = redis.call('INCR', KEYS[i])
    if count == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[4 + 2 * i])) end
    if count > tonumber(ARGV[3 + 2 * i]) then over = true end
  end
  return over
end
if hit(1, clients) then return {1, 0} end
if hit(clients + 1, clients + addresses) then return {2, 0} end
if ARGV[3] == '' then return {0, 0} end
local inbox, doorbell = KEYS[clients + addresses + 1], KEYS[clients + addresses + 2]
redis.call('RPUSH', inbox, ARGV[3])
if redis.call('SET', doorbell, '1', 'NX', 'PX', tonumber(ARGV[4])) then return {0, 1} end
return {0, 0}
"""


class Verdict(enum.IntEnum):
    """What the limits said about one request."""

    ACCEPTED = 0
    CLIENT_OVER = 1
    ADDRESS_OVER = 2


@dataclass(frozen=True)
class Counter:
    """One fixed-window counter: its Redis key, how many hits it allows and over how many seconds."""

    key: str
    amount: int
    window: int


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


@lru_cache(maxsize=16)
def _limits(spec: str) -> tuple[tuple[int, int], ...]:
    """(amount, window in seconds) of each limit a setting names, parsed once (not on every request)."""
    return tuple((item.amount, item.get_expiry()) for item in parse_many(spec))


def _counters(setting: str, scope: str, value: str) -> list[Counter]:
    """The counters of ``value`` for every limit in config ``setting``; none when rate limiting is off."""
    config = current_app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return []
    secret = str(config["SECRET_KEY"]).encode()
    bucket = hmac.new(secret, f"{scope}\0{value}".encode(), hashlib.sha256).hexdigest()[:HASH_SIZE]
    return [
        Counter(redis_key(f"limit:{scope}:{bucket}:{amount}/{window}"), amount, window)
        for amount, window in _limits(config[setting])
    ]


def client_counters(ip: str) -> list[Counter]:
    """The budget of ``ip``'s network: the form, the widget and the API share it."""
    return _counters("RATELIMIT_SUBSCRIBE_IP", "subscribe-ip", client_network(ip))


def address_counters(address: str) -> list[Counter]:
    """The budget of the mailbox ``address`` delivers to, and of its domain."""
    mailbox = mailbox_of(address)
    return _counters("RATELIMIT_CONFIRM_ADDRESS", "confirm-address", mailbox) + _counters(
        "RATELIMIT_CONFIRM_DOMAIN", "confirm-domain", mailbox.rpartition("@")[2]
    )


def count(
    client: Sequence[Counter],
    address: Sequence[Counter] = (),
    append: tuple[str, str, str, int] | None = None,
) -> tuple[Verdict, bool]:
    """Count one hit on every counter (the address's only when the client is within budget) in one round trip.

    ``append`` is (inbox key, doorbell key, request, doorbell lifetime in ms): the request is appended
    to the inbox when every counter is within budget. Return the verdict and whether to ring the doorbell.
    """
    inbox, doorbell, payload, ring_ms = append or ("", "", "", 0)
    counters = [*client, *address]
    keys = [c.key for c in counters] + ([inbox, doorbell] if append else [])
    argv: list[object] = [len(client), len(address), payload, ring_ms]
    for counter in counters:
        argv += [counter.amount, counter.window]
    verdict, ring = _script()(keys=keys, args=argv)
    return Verdict(verdict), bool(ring)


def _script() -> Script:
    """The registered script for this process's client (EVALSHA, loaded again after a Redis restart)."""
    client = get_redis()
    script = _scripts.get(id(client))
    if script is None:
        script = _scripts[id(client)] = client.register_script(_SCRIPT)
    return script


_scripts: dict[int, Script] = {}
