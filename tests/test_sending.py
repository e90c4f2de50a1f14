"""The send engine in one process: claims, re-runs, races, leases, the sweep, control and auto-pause.

The fault tests with real worker processes (kill -9, Redis and PostgreSQL outages) are in
test_sending_faults.py; these pin the rules those rely on, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import event

from mailer.content.importer import import_text
from mailer.digests import service
from mailer.extensions import db
from mailer.models import ALL_TOPICS, Delivery, Digest, Subscriber, utcnow
from mailer.redis_client import get_redis
from mailer.sending import claims, engine, sweep
from mailer.sending.leases import LeaseKeeper
from tests.conftest import CaughtMail, free_port
from tests.data import digest_content


def _digest_for(app: Flask, count: int) -> int:
    """Content, ``count`` confirmed subscribers and a released digest whose doorbells are dropped; its id."""
    with app.app_context():
        import_text(json.dumps(digest_content()))
        db.session.add_all(
            Subscriber(email=f"reader{n}@example.org", topics=ALL_TOPICS, status="confirmed") for n in range(count)
        )
        db.session.commit()
        digest_id = service.create_digest().id
        service.release_due()
    app.extensions["celery"].control.purge()
    return digest_id


def _send(app: Flask, digest_id: int) -> engine.BatchReport:
    """One send batch in this process, as a worker's task runs it."""
    with app.app_context():
        return engine.send_batch(digest_id, app.extensions["mailer.variants"])


def _statuses(app: Flask, digest_id: int) -> dict[str, int]:
    """The digest's deliveries counted by status."""
    with app.app_context():
        return service.delivery_counts(digest_id)


def _digest_status(app: Flask, digest_id: int) -> str:
    """The digest's status as the database has it now."""
    with app.app_context():
        return db.session.execute(db.select(Digest.status).where(Digest.id == digest_id)).scalar_one()


def _copies(mailbox: CaughtMail) -> Counter[str]:
    """How many messages each recipient got."""
    return Counter(to for _, tos in mailbox.envelopes for to in tos)


def test_a_rerun_sends_only_what_is_still_queued(app: Flask, mailbox: CaughtMail) -> None:
    """Rows already sent (by an earlier run) are never sent again; a second run finds nothing."""
    digest_id = _digest_for(app, 5)
    with app.app_context():
        first_two = db.session.execute(db.select(Delivery.id).order_by(Delivery.id).limit(2)).scalars().all()
        db.session.execute(db.update(Delivery).where(Delivery.id.in_(first_two)).values(status="sent"))
        db.session.commit()
    report = _send(app, digest_id)
    assert report.outcomes == {"sent": 3}
    assert report.done
    assert sorted(_copies(mailbox)) == [f"reader{n}@example.org" for n in (2, 3, 4)]
    assert _send(app, digest_id).outcomes == {}
    assert len(mailbox.envelopes) == 3
    assert _digest_status(app, digest_id) == "sent"


def test_a_batch_stops_at_its_size_and_the_next_carries_on(app: Flask, mailbox: CaughtMail) -> None:
    """SEND_BATCH_SIZE bounds one task; chunks of SEND_CHUNK_SIZE inside it; the digest ends with the last."""
    app.config.update(SEND_BATCH_SIZE=7, SEND_CHUNK_SIZE=3)
    digest_id = _digest_for(app, 10)
    assert _send(app, digest_id).outcomes == {"sent": 7}
    assert _digest_status(app, digest_id) == "sending"
    last = _send(app, digest_id)
    assert last.outcomes == {"sent": 3}
    assert last.done
    assert set(_copies(mailbox).values()) == {1}
    assert len(mailbox.envelopes) == 10
    assert _digest_status(app, digest_id) == "sent"


def test_senders_racing_on_one_digest_never_send_a_row_twice(app: Flask, mailbox: CaughtMail) -> None:
    """Four senders at once (as four workers would run duplicated doorbells): everyone gets exactly one copy."""
    app.config.update(SEND_CHUNK_SIZE=5)
    digest_id = _digest_for(app, 60)
    reports: list[engine.BatchReport] = []
    threads = [threading.Thread(target=lambda: reports.append(_send(app, digest_id))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r.sent for r in reports) == 60
    assert len(mailbox.envelopes) == 60
    assert set(_copies(mailbox).values()) == {1}
    assert _statuses(app, digest_id) == {"sent": 60}
    assert _digest_status(app, digest_id) == "sent"


def test_sweep_returns_a_dead_senders_rows_and_rings_again(app: Flask, mailbox: CaughtMail) -> None:
    """A claim whose lease ran out goes back to the queue, the stalled digest gets a doorbell, then goes out once."""
    app.config.update(SEND_LEASE=5)
    digest_id = _digest_for(app, 4)
    with app.app_context(), db.engine.connect() as base:
        conn = base.execution_options(isolation_level="AUTOCOMMIT")
        long_ago = utcnow() - timedelta(seconds=60)
        chunk = claims.claim(conn, digest_id, "dead-host:1:x", 3, long_ago)
        assert len(chunk.rows) == 3
        fresh = claims.claim(conn, digest_id, "live-host:2:y", 1, utcnow())
        assert len(fresh.rows) == 1
        queue = app.config["REDIS_PREFIX"]
        assert get_redis().llen(queue) == 0
        report = sweep.sweep()
        assert report.released == 3
        assert report.rung == {digest_id: 1}
        assert get_redis().llen(queue) == 1
        assert sweep.sweep().rung == {}  # rung a lease ago at most: give the doorbell time to be answered
    app.extensions["celery"].control.purge()
    assert _statuses(app, digest_id) == {"queued": 3, "sending": 1}
    assert _send(app, digest_id).outcomes == {"sent": 3}
    assert sorted(_copies(mailbox)) == [f"reader{n}@example.org" for n in range(3)]
    with app.app_context():
        attempts = db.session.execute(db.select(Delivery.attempts).where(Delivery.status == "sent")).scalars().all()
        assert attempts == [2, 2, 2]  # the lost attempt counts, so a message that kills workers ends as failed


def test_a_claim_lost_on_every_attempt_ends_failed(app: Flask) -> None:
    """A delivery whose sender died SEND_MAX_ATTEMPTS times is failed with the reason, not retried for ever."""
    app.config.update(SEND_LEASE=5, SEND_MAX_ATTEMPTS=1)
    digest_id = _digest_for(app, 1)
    with app.app_context(), db.engine.connect() as base:
        conn = base.execution_options(isolation_level="AUTOCOMMIT")
        claims.claim(conn, digest_id, "dead-host:1:x", 10, utcnow() - timedelta(minutes=5))
        report = sweep.sweep()
    assert report.released == 1
    assert report.finished == [digest_id]
    assert _statuses(app, digest_id) == {"failed": 1}
    assert _digest_status(app, digest_id) == "sent"
    with app.app_context():
        assert "worker was lost" in db.session.execute(db.select(Delivery.last_smtp_reply)).scalar_one()


def test_the_lease_keeper_renews_only_while_held(app: Flask) -> None:
    """Held rows get a fresh ``claimed_at`` every third of the lease; once let go, they age."""
    digest_id = _digest_for(app, 2)
    with app.app_context():
        keeper = LeaseKeeper(db.engine, lease=1.5)
        with db.engine.connect() as base:
            conn = base.execution_options(isolation_level="AUTOCOMMIT")
            start = utcnow() - timedelta(minutes=1)
            claims.claim(conn, digest_id, "me:1:a", 2, start)
        with keeper.holding("me:1:a"):
            time.sleep(1.3)
            db.session.expire_all()
            renewed = db.session.execute(db.select(db.func.min(Delivery.claimed_at))).scalar_one()
        assert renewed > start + timedelta(seconds=50)
        time.sleep(1.2)
        db.session.expire_all()
        assert db.session.execute(db.select(db.func.max(Delivery.claimed_at))).scalar_one() < utcnow() - timedelta(
            seconds=0.5
        )


def test_pause_resume_from_the_cli(app: Flask, runner: FlaskCliRunner, mailbox: CaughtMail) -> None:
    """Paused: nothing is claimed and status says who paused it; resumed: it rings and goes out once."""
    digest_id = _digest_for(app, 3)
    paused = runner.invoke(args=["digest", "pause", str(digest_id)])
    assert paused.exit_code == 0
    assert f"digest {digest_id} paused" in paused.output
    assert runner.invoke(args=["digest", "pause", str(digest_id)]).exit_code == 1
    assert _send(app, digest_id).outcomes == {}
    assert mailbox.envelopes == []
    status = runner.invoke(args=["digest", "status", str(digest_id)])
    assert f"digest {digest_id}: paused (paused by cli)" in status.output
    assert "queued: 3" in status.output
    resumed = runner.invoke(args=["digest", "resume", str(digest_id)])
    assert resumed.exit_code == 0, resumed.output
    with app.app_context():
        assert get_redis().llen(app.config["REDIS_PREFIX"]) == 1
    app.extensions["celery"].control.purge()
    assert _send(app, digest_id).outcomes == {"sent": 3}
    again = runner.invoke(args=["digest", "resume", str(digest_id)])
    assert again.exit_code == 1
    assert "only a paused digest can be resumed" in again.output
    late = runner.invoke(args=["digest", "pause", str(digest_id)])
    assert late.exit_code == 1
    assert "is sent" in late.output
    assert set(_copies(mailbox).values()) == {1}
    assert len(mailbox.envelopes) == 3


def test_control_commands_refuse_what_does_not_exist(runner: FlaskCliRunner) -> None:
    """Unknown ids exit 1 with a sentence; malformed ones are usage errors."""
    for command in ("pause", "resume", "cancel", "retry-failed"):
        missing = runner.invoke(args=["digest", command, "424242"])
        assert missing.exit_code == 1
        assert "no digest 424242" in missing.output
        for bad in ("x", "0", "-1", "99999999999999999999", "1; DROP TABLE digests"):
            assert runner.invoke(args=["digest", command, bad]).exit_code == 2


def test_cancel_stops_what_is_left_and_frees_the_content(
    app: Flask, runner: FlaskCliRunner, mailbox: CaughtMail
) -> None:
    """Cancelled mid-way: the rest is cancelled, nothing more goes out, the next digest carries the content."""
    app.config.update(SEND_BATCH_SIZE=2, SEND_CHUNK_SIZE=2)
    digest_id = _digest_for(app, 5)
    assert _send(app, digest_id).outcomes == {"sent": 2}
    cancelled = runner.invoke(args=["digest", "cancel", str(digest_id)])
    assert cancelled.exit_code == 0
    assert "3 deliveries will not be sent" in cancelled.output
    assert _send(app, digest_id).outcomes == {}
    assert _statuses(app, digest_id) == {"sent": 2, "cancelled": 3}
    assert len(mailbox.envelopes) == 2
    assert runner.invoke(args=["digest", "cancel", str(digest_id)]).exit_code == 1
    assert runner.invoke(args=["digest", "preview"]).exit_code == 0


def test_retry_failed_sends_the_failed_ones_again(app: Flask, runner: FlaskCliRunner, mailbox: CaughtMail) -> None:
    """A 554 at DATA fails one delivery; after the cause is gone, retry-failed sends it and only it."""
    digest_id = _digest_for(app, 3)
    mailbox.reply = lambda sender, to: "554 5.6.0 message refused" if to == ["reader1@example.org"] else None
    assert _send(app, digest_id).outcomes == {"sent": 2, "failed": 1}
    assert _digest_status(app, digest_id) == "sent"
    mailbox.reply = None
    retried = runner.invoke(args=["digest", "retry-failed", str(digest_id)])
    assert retried.exit_code == 0
    assert "1 failed deliveries queued again" in retried.output
    app.extensions["celery"].control.purge()
    assert _digest_status(app, digest_id) == "sending"
    assert _send(app, digest_id).outcomes == {"sent": 1}
    assert _copies(mailbox) == Counter({f"reader{n}@example.org": 1 for n in range(3)})
    nothing = runner.invoke(args=["digest", "retry-failed", str(digest_id)])
    assert nothing.exit_code == 1
    assert "no failed deliveries" in nothing.output


@pytest.fixture
def login_server(mailbox: CaughtMail) -> Iterator[tuple[Controller, dict[str, bool]]]:
    """An SMTP server that demands AUTH and refuses every login (535) until ``state["accept"]`` is set."""
    state = {"accept": False}

    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: object) -> AuthResult:
        """The password is right only once the test has "fixed the server"."""
        return AuthResult(success=state["accept"] and isinstance(data, LoginPassword), handled=False)

    controller = Controller(
        mailbox, hostname="127.0.0.1", port=free_port(), authenticator=check, auth_required=True,
        auth_require_tls=False,
    )  # fmt: skip
    controller.start()
    yield controller, state
    controller.stop()


def test_a_refused_login_pauses_the_digest_and_fails_no_one(
    app: Flask, runner: FlaskCliRunner, mailbox: CaughtMail, login_server: tuple[Controller, dict[str, bool]]
) -> None:
    """535 at AUTH is about us: after SEND_PAUSE_AFTER tries the digest pauses with the reason; resumed, it goes out."""
    controller, state = login_server
    app.config.update(SMTP_URL=f"smtp://news:secret@127.0.0.1:{controller.port}", SEND_PAUSE_AFTER=2)
    digest_id = _digest_for(app, 4)
    report = _send(app, digest_id)
    assert report.paused
    assert report.sender_errors == 2
    assert report.sent == 0
    status = runner.invoke(args=["digest", "status", str(digest_id)])
    assert f"digest {digest_id}: paused (the SMTP server refused our login (authentication failed)" in status.output
    assert "535" in status.output
    assert "queued: 4" in status.output
    assert "failed: 0" in status.output
    with app.app_context():
        assert db.session.execute(db.select(db.func.max(Delivery.attempts))).scalar_one() == 0
    state["accept"] = True
    assert runner.invoke(args=["digest", "resume", str(digest_id)]).exit_code == 0
    app.extensions["celery"].control.purge()
    assert _send(app, digest_id).outcomes == {"sent": 4}
    assert set(_copies(mailbox).values()) == {1}
    assert len(mailbox.envelopes) == 4


def test_statements_per_delivery_stay_under_a_twentieth(app: Flask, mailbox: CaughtMail) -> None:
    """Claims and outcomes are per chunk, not per message: 300 deliveries take a handful of statements."""
    digest_id = _digest_for(app, 300)
    statements: list[str] = []
    with app.app_context():
        listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            report = _send(app, digest_id)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
        dialect = db.engine.dialect.name
    assert report.sent == 300
    assert report.done
    # PostgreSQL: claim and record per chunk of 100; SQLite adds reads of the subscribers and the digest.
    per_delivery = 0.05 if dialect == "postgresql" else 0.07
    assert len(statements) <= per_delivery * 300, statements
