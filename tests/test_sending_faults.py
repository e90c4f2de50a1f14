"""The send engine under faults, with real processes: kill -9, Redis and PostgreSQL outages, AUTH, races.

Every test runs ``celery worker`` and ``celery beat`` as subprocesses against this test's own
PostgreSQL database, its own redis-server and an in-process aiosmtpd that counts the copies
each recipient got. A test checks what a user would: everyone got exactly one copy (except
the documented bound after a kill -9), ``digest status`` says how it ended, the database agrees.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask

from mailer import create_app
from mailer.content.importer import import_text
from mailer.extensions import db
from mailer.models import ALL_TOPICS, Delivery, Subscriber
from tests.processes import PostgresProxy, PrivateRedis, Processes, TestMTA

pytestmark = [
    pytest.mark.slow,
    # AUTH over plain SMTP is what the relay under test offers; on loopback that is allowed.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

CONTENT = {
    "news": [{"slug": "nine-projects", "title": "Nine projects under way", "published_on": "2023-12-15",
              "body": "The SMEWG is implementing nine APEC-funded projects."}],
}  # fmt: skip
#: Small chunks, a short lease and a fast sweep, so "mid-digest" is easy to hit and recovery takes seconds.
SETTINGS = {
    "SEND_BATCH_SIZE": "100",
    "SEND_CHUNK_SIZE": "20",
    "SEND_LEASE": "4",
    "SEND_MAX_ATTEMPTS": "5",
    "SEND_RETRY_DELAY": "1",
    "SWEEP_INTERVAL": "1",
}
CHUNK = int(SETTINGS["SEND_CHUNK_SIZE"])
#: Seconds the test MTA waits before answering each DATA: 2 pool processes send ~90 messages a second.
SMTP_DELAY = 0.02
STATUS_LINE = re.compile(r"digest (\d+): (\w+)(?: \((.*)\))?$")


@dataclass
class Status:
    """What ``digest status ID`` printed."""

    state: str
    reason: str | None
    counts: dict[str, int]
    output: str


@dataclass
class Rig:
    """One test's processes and services, and the checks a user would make."""

    app: Flask
    env: dict[str, str]
    mta: TestMTA
    redis: PrivateRedis
    processes: Processes
    proxy: PostgresProxy | None = None
    emails: list[str] = field(default_factory=list)

    def cli(self, *args: object) -> Result:
        """Run ``flask --app wsgi ARGS`` in-process, with the same configuration as the workers."""
        return self.app.test_cli_runner().invoke(args=[str(a) for a in args])

    def add_subscribers(self, count: int) -> None:
        """Something new to send and ``count`` confirmed subscribers to all topics."""
        emails = [f"reader{n:05d}@example.org" for n in range(count)]
        with self.app.app_context():
            import_text(json.dumps(CONTENT))
            rows = [{"email": e, "status": "confirmed", "topics": ALL_TOPICS} for e in emails]
            db.session.execute(db.insert(Subscriber), rows)
            db.session.commit()
        self.emails.extend(emails)

    def send_digest(self) -> int:
        """``digest send``: the new digest's id."""
        result = self.cli("digest", "send")
        assert result.exit_code == 0, result.output
        return int(result.stdout.strip())

    def control(self, command: str, digest_id: int) -> Result:
        """``digest pause|resume|cancel|retry-failed ID``, which must succeed."""
        result = self.cli("digest", command, digest_id)
        assert result.exit_code == 0, f"digest {command} {digest_id}: {result.output}"
        return result

    def status(self, digest_id: int) -> Status:
        """``digest status ID``, parsed."""
        result = self.cli("digest", "status", digest_id)
        assert result.exit_code == 0, result.output
        first, *rest = result.output.splitlines()
        match = STATUS_LINE.match(first)
        assert match and int(match.group(1)) == digest_id, result.output
        counts = {name: int(n) for name, n in (line.split(": ") for line in rest)}
        return Status(match.group(2), match.group(3), counts, result.output)

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Poll ``predicate`` until true; fail after ``timeout`` s with the processes' logs."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what}\n{self.processes.logs()}")
            time.sleep(0.1)

    def wait_for_mail(self, count: int, timeout: float = 30) -> None:
        """Wait until the MTA took ``count`` messages (to fault the digest mid-way)."""
        self.wait(lambda: self.mta.count() >= count, timeout, f"{count} messages taken (got {self.mta.count()})")

    def wait_for_state(self, digest_id: int, state: str, timeout: float = 60) -> Status:
        """Wait until ``digest status`` says ``state`` and no delivery is claimed any more."""
        seen: list[Status] = []

        def reached() -> bool:
            seen.append(self.status(digest_id))
            return seen[-1].state == state and not seen[-1].counts.get("sending")

        try:
            self.wait(reached, timeout, f"digest {digest_id} {state}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nlast status:\n{seen[-1].output}") from None
        return seen[-1]

    def settle(self, seconds: float = 1.5) -> None:
        """Give late messages (there should be none) time to arrive before counting."""
        time.sleep(seconds)

    def deliveries(self, digest_id: int) -> dict[str, str]:
        """Each recipient's delivery status, from the database."""
        with self.app.app_context():
            rows = db.session.execute(
                db.select(Delivery.email, Delivery.status).where(Delivery.digest_id == digest_id)
            ).all()
            db.session.remove()
        assert len(rows) == len({email for email, _ in rows}), "two deliveries for one subscriber"
        return {email.lower(): status for email, status in rows}

    def assert_everyone_once(self, digest_id: int, duplicates_at_most: int = 0) -> None:
        """Sent, everyone got it, nobody more than once beyond ``duplicates_at_most``; the database agrees."""
        status = self.wait_for_state(digest_id, "sent")
        self.settle()
        copies = self.mta.copies()
        missing = sorted(set(self.emails) - set(copies))
        duplicates = sum(n - 1 for n in copies.values())
        assert not missing, f"{len(missing)} subscribers got nothing, e.g. {missing[:5]}\n{self.processes.logs()}"
        assert set(copies) == set(self.emails), "mail to someone who is not a subscriber"
        assert duplicates <= duplicates_at_most, (
            f"{duplicates} duplicate copies (at most {duplicates_at_most}): "
            f"{[(a, n) for a, n in copies.items() if n > 1][:10]}\n{self.processes.logs()}"
        )
        assert status.counts.get("sent") == len(self.emails), status.output
        assert sum(status.counts.values()) == len(self.emails), status.output
        assert set(self.deliveries(digest_id).values()) == {"sent"}

    def ring(self, digest_id: int, times: int = 1, task_id: str | None = None) -> None:
        """Queue ``times`` extra doorbells for the digest (with ``task_id``, as a broker redelivery would)."""
        celery = self.app.extensions["celery"]
        for _ in range(times):
            celery.send_task("mailer.sending.send", args=[digest_id], task_id=task_id)


@pytest.fixture
def make_rig(
    postgresql_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Rig]]:
    """``make_rig(smtp_auth=False, via_proxy=False, **env)``: services, environment and an app; all gone after."""
    made: list[Rig] = []

    def make(*, smtp_auth: bool = False, via_proxy: bool = False, **overrides: str) -> Rig:
        mta = TestMTA(delay=SMTP_DELAY)
        controller = mta.serve(require_auth=smtp_auth)
        cleanups.append(controller.stop)
        private_redis = PrivateRedis(tmp_path)
        cleanups.append(private_redis.stop)
        proxy = PostgresProxy(postgresql_database_url) if via_proxy else None
        if proxy is not None:
            cleanups.append(proxy.close)
        login = f"{mta.user}:{mta.password}@" if smtp_auth else ""
        env = {
            "MAILER_ENV": "production",
            "SECRET_KEY": "faults-" + "s" * 40,
            "BASE_URL": "https://news.example.org",
            "DATABASE_URL": proxy.url if proxy else postgresql_database_url,
            "REDIS_URL": private_redis.url,
            "SMTP_URL": f"smtp://{login}127.0.0.1:{controller.port}",
            "MAIL_FROM": "SMEWG News <news@example.org>",
            "REDIS_PREFIX": f"mailer-faults-{uuid.uuid4().hex[:10]}",
            "MAILER_INSTANCE": str(tmp_path / "instance"),
            "PYTHONUNBUFFERED": "1",
            **SETTINGS,
            **overrides,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # The test's own app talks to PostgreSQL directly, so it can look while the proxy is cut.
        app = create_app({"SQLALCHEMY_DATABASE_URI": postgresql_database_url})
        processes = Processes(dict(os.environ), tmp_path)
        rig = Rig(app, env, mta, private_redis, processes, proxy)
        made.append(rig)
        return rig

    cleanups: list[Callable[[], None]] = []
    yield make
    for rig in made:
        rig.processes.close()
        with rig.app.app_context():
            db.session.remove()
            db.engine.dispose()
    for cleanup in reversed(cleanups):
        cleanup()


def test_plain_digest_through_worker_processes(make_rig: Callable[..., Rig]) -> None:
    """No fault: a worker process and beat send a digest of 300, each subscriber gets one copy."""
    rig = make_rig()
    rig.add_subscribers(300)
    rig.processes.worker()
    rig.processes.beat()
    digest_id = rig.send_digest()
    rig.assert_everyone_once(digest_id)
