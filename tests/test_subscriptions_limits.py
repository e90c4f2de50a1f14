"""Confirmation emails limited per mailbox, domain and client network, with hashed Redis keys and equal work."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from redis.connection import AbstractConnection
from sqlalchemy import event

from mailer.config import load_config
from mailer.extensions import db
from mailer.models import SubscriberStatus
from mailer.subscriptions.limits import client_network, mailbox_of
from tests.conftest import CaughtMail
from tests.subscribing import add_subscriber, settle, snapshot

URL = "/api/v1/subscriptions"


def post(client: FlaskClient, email: str, ip: str = "127.0.0.1") -> tuple[int, bytes]:
    """Subscribe ``email`` through the API from ``ip``; the status and body."""
    response = client.post(URL, json={"email": email}, environ_base={"REMOTE_ADDR": ip})
    return response.status_code, response.get_data()


@pytest.mark.parametrize(
    ("address", "mailbox"),
    [
        ("Victim+1@Example.org", "victim@example.org"),
        ("victim+a+b@example.org", "victim@example.org"),
        ("+tag@example.org", "+tag@example.org"),
        ("ann.lee@example.org", "ann.lee@example.org"),
        ("Ann.Lee@gmail.com", "annlee@gmail.com"),
        ("a.n.n.lee+news@googlemail.com", "annlee@gmail.com"),
    ],
)
def test_mailbox_of(address: str, mailbox: str) -> None:
    """Case and +tags never make another mailbox; Gmail's dots and googlemail.com do not either."""
    assert mailbox_of(address) == mailbox


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:abcd:1", "2001:db8::/64"),
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("", "unknown"),
    ],
)
def test_client_network(ip: str, network: str) -> None:
    """IPv4 counts per address, IPv6 per /64 (an IPv4-mapped address is the IPv4 address)."""
    assert client_network(ip) == network


def test_plus_addressing_flood_reaches_the_mailbox_limit_only(
    app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object
) -> None:
    """victim+1@ ... victim+10@ is one mailbox: three emails go out; every request gets today's answers."""
    answers = [post(client, f"victim+{n}@example.org") for n in range(1, 11)]
    assert [status for status, _ in answers] == [202] * 3 + [429] * 7
    assert len({body for _, body in answers[:3]}) == 1
    assert len({body for _, body in answers[3:]}) == 1
    mailbox.wait_for(3)
    time.sleep(0.5)
    assert sorted(m["To"] for m in mailbox.messages) == [f"victim+{n}@example.org" for n in (1, 2, 3)]


def test_gmail_dots_and_googlemail_are_one_mailbox(app: Flask, client: FlaskClient) -> None:
    """Dotted and googlemail.com spellings share a limit at Gmail; elsewhere dots make another mailbox."""
    app.config["RATELIMIT_CONFIRM_ADDRESS"] = "2 per hour"
    assert post(client, "Ann.Lee@gmail.com")[0] == 202
    assert post(client, "annlee+x@gmail.com")[0] == 202
    before = snapshot(app)
    assert post(client, "a.n.n.l.e.e@googlemail.com")[0] == 429
    assert snapshot(app) == before
    assert [post(client, e)[0] for e in ("ann.lee@example.org", "annlee@example.org")] == [202, 202]


def test_domain_cap(app: Flask, client: FlaskClient) -> None:
    """One recipient domain has a budget of its own; other domains are not affected."""
    app.config["RATELIMIT_CONFIRM_DOMAIN"] = "3 per hour"
    assert [post(client, f"{name}@corp.example.org")[0] for name in "abc"] == [202] * 3
    before = snapshot(app)
    assert post(client, "d@Corp.Example.org")[0] == 429
    assert snapshot(app) == before
    assert post(client, "d@other.example.org")[0] == 202


def test_ipv6_clients_share_a_limit_per_64(app: Flask, client: FlaskClient) -> None:
    """Addresses in one IPv6 /64 share the per-IP budget; another /64 and each IPv4 address have their own."""
    app.config["RATELIMIT_SUBSCRIBE_IP"] = "2 per hour"
    assert post(client, "a1@example.org", "2001:db8::1")[0] == 202
    assert post(client, "a2@example.org", "2001:db8::ffff:2")[0] == 202
    assert post(client, "a3@example.org", "2001:db8:0:0:abcd::3")[0] == 429
    assert post(client, "b1@example.org", "2001:db8:0:1::1")[0] == 202
    assert [post(client, f"c{n}@example.org", "192.0.2.1")[0] for n in range(3)] == [202, 202, 429]
    assert post(client, "d1@example.org", "192.0.2.2")[0] == 202


def test_no_address_in_redis_keys(app: Flask, client: FlaskClient, redis_url: str) -> None:
    """After subscribing, the Redis keys hold hashes: no address, domain or client IP appears in any key."""
    local, domain = f"person{uuid.uuid4().hex[:8]}", f"d{uuid.uuid4().hex[:8]}.example.org"
    assert post(client, f"{local}+news@{domain}", "2001:db8:77::1")[0] == 202
    assert post(client, f"{local}@gmail.com", "2001:db8:77::1")[0] == 202
    keys = [k.decode() for k in redis.Redis.from_url(redis_url).scan_iter(f"*{app.config['REDIS_PREFIX']}*")]
    assert len([k for k in keys if "confirm-" in k]) >= 3
    assert any("subscribe-ip" in k for k in keys)
    everywhere = [k.decode().lower() for k in redis.Redis.from_url(redis_url).scan_iter("*")]
    for secret in (local, domain, "gmail.com", "2001:db8:77"):
        assert not [k for k in everywhere if secret in k], secret


@pytest.mark.parametrize("name", ["RATELIMIT_SUBSCRIBE_IP", "RATELIMIT_CONFIRM_ADDRESS", "RATELIMIT_CONFIRM_DOMAIN"])
def test_rate_limits_are_read_from_the_environment(tmp_path: Path, name: str) -> None:
    """A rate limit is read from the environment, several at once too (malformed ones: tests/test_config.py)."""
    assert load_config({name: " 5/minute;100 per day "}, str(tmp_path))[name] == "5/minute;100 per day"


STATES = ("new", "pending", "confirmed", "unsubscribed", "suppressed")


@contextmanager
def recorded(app: Flask) -> Iterator[tuple[list[str], list[list[str]]]]:
    """Record the SQL statements and the Redis round trips (command names per round trip) inside."""
    statements: list[str] = []
    trips: list[list[str]] = []

    def on_sql(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    send = AbstractConnection.send_packed_command

    def on_redis(self: AbstractConnection, command: object, *args: object, **kwargs: object) -> object:
        data = b"".join(command) if isinstance(command, list) else bytes(command)  # type: ignore[arg-type]
        trips.append([m.decode().upper() for m in re.findall(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n", data)])
        return send(self, command, *args, **kwargs)  # type: ignore[arg-type]

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", on_sql)
    AbstractConnection.send_packed_command = on_redis  # type: ignore[method-assign]
    try:
        yield statements, trips
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        event.remove(engine, "before_cursor_execute", on_sql)


def test_every_address_state_does_the_same_work(app: Flask, client: FlaskClient) -> None:
    """The answer never reads the database, and every state makes the same Redis round trips (a stand-in for
    timing: the state-dependent work happens later, in the worker)."""
    for state in STATES[1:]:
        add_subscriber(app, f"{state}@example.org", SubscriberStatus(state))
    post(client, "warm-up@example.org")  # connections and scripts are made once per process
    settle(app)
    work: dict[str, tuple[list[str], list[list[str]]]] = {}
    for state in STATES:
        with recorded(app) as (statements, trips):
            assert post(client, f"{state}@example.org")[0] == 202
        work[state] = (statements, trips)
        settle(app)  # each request finds the inbox empty, so each one rings the doorbell alike

    for state in STATES:
        assert work[state][0] == [], state
        assert work[state][1] == work["new"][1], state
    assert ["EVALSHA"] in work["new"][1]
