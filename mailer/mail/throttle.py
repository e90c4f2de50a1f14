"""SEND_RATE: one cap on messages per second shared by every worker process on every machine.

Each send reserves the next free slot in Redis (GCRA: a "theoretical arrival time" moved on
by one interval per message, on Redis's own clock), then sleeps until its slot comes. The
slots are global, so N workers together never exceed the rate, and none of them busy-waits.
"""

from __future__ import annotations

import time

import redis

RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], tat + interval, 'PX', math.ceil(interval / 1000) + 60000)
return tat - now
"""


class SendThrottle:
    """Global pacing of outgoing messages at ``per_second``."""

    def __init__(self, client: redis.Redis, per_second: float, key: str) -> None:
        self.per_second = per_second
        self.interval_us = max(1, round(1_000_000 / per_second))
        self.key = key
        self.reserve = client.register_script(RESERVE)

    def wait(self) -> float:
        """Reserve the next slot and sleep until it; return the seconds slept."""
        delay = int(self.reserve(keys=[self.key], args=[self.interval_us])) / 1_000_000
        if delay > 0:
            time.sleep(delay)
        return delay
