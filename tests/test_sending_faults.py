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
from tests.data import news_item
from tests.processes import CountingMTA, PostgresProxy, PrivateRedis, Processes

pytestmark = [
    pytest.mark.slow,
    # AUTH over plain SMTP is what the relay under test offers; on loopback that is allowed.
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]

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
#: Seconds the test MTA waits before answering each DATA, so a digest of SUBSCRIBERS takes a few seconds.
SMTP_DELAY = 0.02
#: Subscribers in a test's list: a few seconds of sending.
SUBSCRIBERS = 400
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
    mta: CountingMTA
    redis: PrivateRedis
    processes: Processes
    proxy: PostgresProxy | None = None
    emails: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    #: What happened when, in seconds since the rig was made: failure messages show it.
    timeline: list[str] = field(default_factory=list)

    def note(self, event: str) -> None:
        """Add ``event`` to the timeline."""
        self.timeline.append(f"{time.monotonic() - self.started:7.2f} s  {event} ({self.mta.count()} taken)")

    def explain(self) -> str:
        """The timeline and the end of every process's log."""
        return "timeline:\n" + "\n".join(self.timeline) + "\n" + self.processes.logs()

    def cli(self, *args: object) -> Result:
        """Run ``flask --app wsgi ARGS`` in-process, with the same configuration as the workers."""
        return self.app.test_cli_runner().invoke(args=[str(a) for a in args])

    def add_subscribers(self, count: int) -> None:
        """Something new to send and ``count`` confirmed subscribers to all topics."""
        emails = [f"reader{n:05d}@example.org" for n in range(count)]
        with self.app.app_context():
            import_text(json.dumps({"news": [news_item()]}))
            rows = [{"email": e, "status": "confirmed", "topics": ALL_TOPICS} for e in emails]
            db.session.execute(db.insert(Subscriber), rows)
            db.session.commit()
        self.emails.extend(emails)

    def start(self, subscribers: int = SUBSCRIBERS, workers: int = 1) -> int:
        """Subscribers, ``workers`` worker processes and beat, then ``digest send``: the digest's id."""
        self.add_subscribers(subscribers)
        for _ in range(workers):
            self.processes.worker()
        self.processes.beat()
        return self.send_digest()

    def midway(self) -> None:
        """Wait until a quarter of the digest went out: the moment to make trouble."""
        self.wait_for_mail(len(self.emails) // 4)

    def send_digest(self) -> int:
        """``digest send``: the new digest's id."""
        result = self.cli("digest", "send")
        assert result.exit_code == 0, result.output
        self.note("digest send")
        return int(result.stdout.strip())

    def control(self, command: str, digest_id: int) -> Result:
        """``digest pause|resume|cancel|retry-failed ID``, which must succeed."""
        result = self.cli("digest", command, digest_id)
        assert result.exit_code == 0, f"digest {command} {digest_id}: {result.output}"
        self.note(f"digest {command}")
        return result

    def status(self, digest_id: int) -> Status:
        """``digest status ID``, parsed."""
        result = self.cli("digest", "status", digest_id)
        assert result.exit_code == 0, result.output
        first, *rest = result.output.splitlines()
        match = STATUS_LINE.match(first)
        assert match, result.output
        assert int(match.group(1)) == digest_id, result.output
        counts = {name: int(n) for name, n in (line.split(": ") for line in rest)}
        return Status(match.group(2), match.group(3), counts, result.output)

    def wait(self, predicate: Callable[[], object], timeout: float, what: str) -> None:
        """Poll ``predicate`` until true; fail after ``timeout`` s with the processes' logs."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what} ({self.mta.count()} taken)\n{self.explain()}")
            time.sleep(0.1)
        self.note(what)

    def wait_for_mail(self, count: int, timeout: float = 30) -> None:
        """Wait until the MTA took ``count`` messages (to fault the digest mid-way)."""
        self.wait(lambda: self.mta.count() >= count, timeout, f"{count} messages taken")

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
        assert not missing, f"{len(missing)} subscribers got nothing, e.g. {missing[:5]}\n{self.explain()}"
        assert set(copies) == set(self.emails), "mail to someone who is not a subscriber"
        assert duplicates <= duplicates_at_most, (
            f"{duplicates} duplicate copies (at most {duplicates_at_most}): "
            f"{[(a, n) for a, n in copies.items() if n > 1][:10]}\n{self.explain()}"
        )
        assert status.counts.get("sent") == len(self.emails), status.output
        assert sum(status.counts.values()) == len(self.emails), status.output
        assert set(self.deliveries(digest_id).values()) == {"sent"}

    def ring(self, digest_id: int, times: int = 1, task_id: str | None = None) -> None:
        """Queue ``times`` extra doorbells for the digest (with ``task_id``, as a broker redelivery would)."""
        celery = self.app.extensions["celery"]
        for _ in range(times):
            celery.send_task("mailer.sending.send", args=[digest_id], task_id=task_id)
        self.note(f"{times} extra doorbells" + (" with one task id" if task_id else ""))


@pytest.fixture
def make_rig(
    postgresql_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Rig]]:
    """``make_rig(smtp_auth=False, via_proxy=False, **env)``: services, environment and an app; all gone after."""
    made: list[Rig] = []
    cleanups: list[Callable[[], None]] = []

    def make(*, smtp_auth: bool = False, via_proxy: bool = False, **overrides: str) -> Rig:
        mta = CountingMTA(delay=SMTP_DELAY)
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
            "ORG_POSTAL_ADDRESS": "1 Example Street, Singapore",
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
        rig = Rig(app, mta, private_redis, processes, proxy)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.processes.close()
        with rig.app.app_context():
            db.session.remove()
            db.engine.dispose()
    for cleanup in reversed(cleanups):
        cleanup()


def test_worker_killed_mid_digest(make_rig: Callable[..., Rig]) -> None:
    """kill -9 a worker and its pool mid-digest, start another: done in seconds, duplicates only within the bound.

    The killed worker's doorbells sit unacknowledged in Redis and its claimed rows stay ``sending``;
    the sweep hands the rows back when their lease runs out and rings again. Only what the killed
    pool processes had sent but not yet recorded goes out twice: at most one chunk each.
    """
    rig = make_rig()
    digest_id = rig.start()
    rig.midway()
    (worker,) = rig.processes.workers
    pool = len(worker.children())
    assert pool
    assert worker.kill() == pool + 1
    rig.note(f"kill -9 worker and its {pool} pool processes")
    rig.processes.worker()
    rig.assert_everyone_once(digest_id, duplicates_at_most=CHUNK * pool)


@pytest.mark.parametrize("fault", ["restart", "flushall"])
def test_redis_lost_mid_digest(make_rig: Callable[..., Rig], fault: str) -> None:
    """Redis crashes and comes back empty 2 s later (or is flushed) mid-digest: it completes, once each.

    Every queued doorbell, unacknowledged task and key is gone; the database still knows who is
    owed a copy, and outcomes are recorded there, so not even one duplicate.
    """
    rig = make_rig()
    digest_id = rig.start()
    rig.midway()
    if fault == "restart":
        rig.redis.kill()
        rig.note("redis-server killed")
        time.sleep(2)
        rig.redis.start()
        rig.note("redis-server started, empty")
    else:
        rig.redis.flushall()
        rig.note("FLUSHALL")
    rig.assert_everyone_once(digest_id)


@pytest.mark.parametrize(
    ("outage", "resent_per_process"),
    [pytest.param(6, CHUNK, id="6s-past-the-lease"), pytest.param(2, 0, id="2s-blip")],
)
def test_postgres_unreachable_mid_digest(make_rig: Callable[..., Rig], outage: int, resent_per_process: int) -> None:
    """A real network outage of a real PostgreSQL mid-digest: the digest completes, duplicates bounded.

    The workers reach PostgreSQL through a TCP proxy; the proxy shuts down every connection at once
    and refuses new ones, then lets them through again. An outage that outlasts the lease (4 s) may
    hand chunks sent but not yet recorded back to the queue: at most one chunk per pool process is
    sent again. A shorter one must cost nothing.
    """
    rig = make_rig(via_proxy=True)
    digest_id = rig.start()
    rig.midway()
    bound = resent_per_process * rig.processes.pool_processes()
    assert rig.proxy is not None
    rig.proxy.cut()
    rig.note("PostgreSQL cut off")
    time.sleep(outage)
    rig.proxy.open()
    rig.note("PostgreSQL reachable again")
    rig.assert_everyone_once(digest_id, duplicates_at_most=bound)


def test_smtp_auth_failure_pauses_the_digest(make_rig: Callable[..., Rig]) -> None:
    """The relay refuses our login (535): the digest pauses itself and blames authentication, not readers.

    Nobody is marked failed or suppressed. Once the relay accepts the login again, ``digest resume``
    sends everyone their one copy.
    """
    rig = make_rig(smtp_auth=True, SEND_PAUSE_AFTER="3")
    rig.mta.auth_ok = False
    digest_id = rig.start()
    paused = rig.wait_for_state(digest_id, "paused", timeout=30)
    assert paused.reason, paused.output
    assert "authentication" in paused.reason.lower(), paused.output
    # What staff see from a shell on a production box, and how they carry on.
    shown = rig.processes.cli("digest", "status", str(digest_id))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"digest {digest_id}: paused ("), shown.stderr
    assert rig.mta.auth_failures > 0
    assert rig.mta.count() == 0
    assert paused.counts.get("failed", 0) == paused.counts.get("bounced", 0) == 0, paused.output
    assert paused.counts.get("queued") == len(rig.emails), paused.output
    with rig.app.app_context():
        statuses = set(db.session.execute(db.select(Subscriber.status)).scalars())
        db.session.remove()
    assert statuses == {"confirmed"}
    rig.mta.auth_ok = True
    rig.note("relay accepts the login again")
    resumed = rig.processes.cli("digest", "resume", str(digest_id))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    rig.note("digest resume (flask --app wsgi in a process of its own)")
    rig.assert_everyone_once(digest_id)


def test_racing_workers_and_extra_doorbells_send_once(make_rig: Callable[..., Rig]) -> None:
    """Two worker processes and doorbells rung again and again: nobody gets two copies.

    A doorbell carries only the digest id, so a redelivered one (same task id) or a re-run is the
    same message as an extra one: rung at the start, mid-digest while most batches are still
    queued, and after the digest is done, when they must send nothing.
    """
    rig = make_rig()
    digest_id = rig.start(600, workers=2)
    redelivered = uuid.uuid4().hex
    rig.ring(digest_id, times=4)
    rig.ring(digest_id, times=2, task_id=redelivered)
    rig.midway()
    rig.ring(digest_id, times=4)
    rig.ring(digest_id, times=2, task_id=redelivered)
    rig.assert_everyone_once(digest_id)
    rig.ring(digest_id, times=3)
    rig.settle(2)
    assert rig.mta.count() == len(rig.emails)


def test_cancel_mid_digest_stops_it(make_rig: Callable[..., Rig]) -> None:
    """``digest cancel`` mid-digest: only already-claimed chunks still go out, the rest are ``cancelled``."""
    rig = make_rig()
    digest_id = rig.start()
    rig.midway()
    bound = CHUNK * rig.processes.pool_processes()
    rig.control("cancel", digest_id)
    # From the moment the command has committed: each pool process may finish the chunk it holds.
    after = time.monotonic()
    rig.wait_for_state(digest_id, "cancelled", timeout=30)
    rig.settle(2)  # a few sweeps: nothing may ring it back to life
    assert rig.mta.taken_after(after) <= bound
    status = rig.status(digest_id)
    copies = rig.mta.copies()
    assert set(copies.values()) == {1}
    deliveries = rig.deliveries(digest_id)
    assert {e for e, s in deliveries.items() if s == "sent"} == set(copies), "the database disagrees with the MTA"
    assert {e for e, s in deliveries.items() if s == "cancelled"} == set(rig.emails) - set(copies), status.output
    assert status.counts["sent"] == len(copies)
    assert status.counts["cancelled"] == len(rig.emails) - len(copies)


def test_pause_then_resume_completes_once(make_rig: Callable[..., Rig]) -> None:
    """``digest pause`` mid-digest stops sending after the claimed chunks; ``digest resume`` finishes, once each."""
    rig = make_rig()
    digest_id = rig.start()
    rig.midway()
    bound = CHUNK * rig.processes.pool_processes()
    rig.control("pause", digest_id)
    after = time.monotonic()
    paused = rig.wait_for_state(digest_id, "paused", timeout=30)
    assert paused.reason, paused.output
    taken = rig.mta.count()
    rig.settle(2)  # a few sweeps: a paused digest gets no doorbells
    assert rig.mta.count() == taken < len(rig.emails)
    assert rig.mta.taken_after(after) <= bound
    assert paused.counts.get("queued") == len(rig.emails) - taken, paused.output
    rig.control("resume", digest_id)
    rig.assert_everyone_once(digest_id)
