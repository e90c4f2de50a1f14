"""The sweep (beat, every SWEEP_INTERVAL): nothing a crash, a lost broker or a lost task left behind stays stuck.

1. Rows ``sending`` whose lease ran out (their worker died) go back to the queue.
2. Rows queued for a cancelled digest become cancelled.
3. Every digest going out that has shown no progress for a lease, while no task waits in the
   queue, gets its doorbells rung again when it has due, queued rows, or is marked sent when
   it has nothing left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from ..extensions import db
from ..models import Digest, utcnow
from ..redis_client import best_effort, get_redis
from . import claims
from .control import ring
from .engine import progress_key


@dataclass
class SweepReport:
    """What one sweep did."""

    released: int = 0
    cancelled: int = 0
    rung: dict[int, int] = field(default_factory=dict)
    finished: list[int] = field(default_factory=list)


def sweep() -> SweepReport:
    """Run the three steps once."""
    config = current_app.config
    report = SweepReport()
    with db.engine.connect() as base:
        conn = base.execution_options(isolation_level="AUTOCOMMIT")
        now = utcnow()
        report.released = claims.expire_leases(conn, config["SEND_LEASE"], config["SEND_MAX_ATTEMPTS"], now)
        report.cancelled = claims.cancel_leftovers(conn, now)
        active = conn.execute(db.select(Digest.id).where(Digest.status.in_(claims.ACTIVE))).scalars().all()
        # A digest a sender touched within a lease is left alone (its senders close it themselves), so
        # a big digest going out is not counted every sweep.
        for digest_id in (d for d in active if _stalled(d)):
            due = claims.claimable(conn, digest_id, now)
            if due:
                report.rung[digest_id] = ring(digest_id, due)
                _note_rung(digest_id)
            elif claims.finish_if_done(conn, digest_id, now):
                report.finished.append(digest_id)
    return report


def _stalled(digest_id: int) -> bool:
    """True when no sender touched the digest for a lease and no task is waiting to run."""
    client = get_redis()
    moving = best_effort(lambda: client.exists(progress_key(digest_id)))
    waiting = best_effort(lambda: client.llen(current_app.config["REDIS_PREFIX"]))
    return not moving and not waiting


def _note_rung(digest_id: int) -> None:
    """Count the ringing as progress, so the next sweeps give the new tasks a lease to start."""
    lease = int(current_app.config["SEND_LEASE"])
    best_effort(lambda: get_redis().set(progress_key(digest_id), "rung", ex=lease))
