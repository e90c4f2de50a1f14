"""Keeps the claims of this process alive: a thread renews their lease while the process lives.

A claim is a lease: the sweep returns rows whose ``claimed_at`` is older than SEND_LEASE to the
queue. Renewing from a thread (not between messages) keeps a claim alive however long one SMTP
exchange takes, and stops the moment the process dies, which is exactly when the rows should
go back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..models import utcnow
from .claims import renew

log = logging.getLogger(__name__)


class LeaseKeeper:
    """One daemon thread per process that renews the lease of every claim token held."""

    def __init__(self, engine: Engine, lease: float) -> None:
        self.engine = engine
        self.period = lease / 3
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @contextmanager
    def holding(self, token: str) -> Iterator[None]:
        """Renew ``token``'s rows for as long as the block runs."""
        with self._lock:
            self._tokens.add(token)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="mailer-lease-keeper", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._tokens.discard(token)

    def _run(self) -> None:
        """Renew every period until no token is held."""
        while True:
            self._wake.wait(self.period)
            with self._lock:
                tokens = sorted(self._tokens)
                if not tokens:
                    self._thread = None
                    return
            try:
                with self.engine.connect() as conn:
                    renew(conn.execution_options(isolation_level="AUTOCOMMIT"), tokens, utcnow())
            except SQLAlchemyError as exc:
                # The database is away: the sweep cannot run either, so the claim holds; try again.
                log.warning("could not renew send leases: %s", exc)


_keepers: dict[tuple[int, str], LeaseKeeper] = {}


def keeper_for(engine: Engine, lease: float) -> LeaseKeeper:
    """This process's keeper for ``engine`` (one thread however many sends run)."""
    key = (id(engine), str(lease))
    keeper = _keepers.get(key)
    if keeper is None:
        keeper = _keepers[key] = LeaseKeeper(engine, lease)
    return keeper
