"""What came back, for reading: bounce events by digest, by subscriber and newest first, and suppressed addresses.

Both long lists page by keyset (a cursor of the last row shown), not by offset, so a late page costs
what the first does. Bounce events page on their id: ``received_at`` is set when the row is inserted,
so id order is received order, and the primary key serves it. Suppressed addresses page on
``(suppressed_at, id)``, newest first, addresses suppressed at an unknown time (imported, or from
before 0004) last. That list wants an index on subscribers ``(status, suppressed_at, id)``, which
the schema does not have yet: without it each page sorts every suppressed row (about 50 ms for
100,000 on SQLite or PostgreSQL; under 1 ms with it).
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Row, Select, func, tuple_

from ..extensions import db
from ..models import BOUNCE_KINDS, BounceEvent, Delivery, Subscriber, SubscriberStatus

#: Where the suppression list goes on from: the last row's ``suppressed_at`` (None: unknown) and id.
SuppressionCursor = tuple[datetime | None, int]


class Listing(NamedTuple):
    """One page of a list and whether there is more after it."""

    rows: list
    more: bool


def _with_address() -> Select:
    """Bounce events with the address each is about: the delivery's, else the subscriber's."""
    address = func.coalesce(Delivery.email, Subscriber.email).label("address")
    return (
        db.select(BounceEvent, address)
        .outerjoin(Delivery, Delivery.id == BounceEvent.delivery_id)
        .outerjoin(Subscriber, Subscriber.id == BounceEvent.subscriber_id)
    )


def _listing(rows: list, limit: int) -> Listing:
    """The first ``limit`` of ``rows``, fetched one more than ``limit`` to learn whether a next page exists."""
    return Listing(rows[:limit], len(rows) > limit)


def digest_bounce_counts(digest_id: int) -> dict[str, int]:
    """A digest's bounce events counted by kind, with every kind present."""
    query = db.select(BounceEvent.kind, func.count()).where(BounceEvent.digest_id == digest_id)
    query = query.group_by(BounceEvent.kind)
    return {kind: 0 for kind in BOUNCE_KINDS} | dict(db.session.execute(query).tuples().all())


def digest_bounces(digest_id: int, limit: int) -> list[Row[tuple[BounceEvent, str | None]]]:
    """A digest's bounce events with their address, newest first."""
    query = _with_address().where(BounceEvent.digest_id == digest_id).order_by(BounceEvent.id.desc())
    return list(db.session.execute(query.limit(limit)).all())


def subscriber_bounces(subscriber_id: int, limit: int) -> list[BounceEvent]:
    """A subscriber's bounce events, newest first (index ``ix_bounce_events_subscriber_received``)."""
    query = (
        db.select(BounceEvent)
        .where(BounceEvent.subscriber_id == subscriber_id)
        .order_by(BounceEvent.received_at.desc(), BounceEvent.id.desc())
    )
    return list(db.session.execute(query.limit(limit)).scalars())


def recent_bounces(kind: str | None, before: int | None, limit: int) -> Listing:
    """Bounce events of ``kind`` (any when None) with their address, newest first, older than event ``before``."""
    query = _with_address().order_by(BounceEvent.id.desc())
    if kind is not None:
        query = query.where(BounceEvent.kind == kind)
    if before is not None:
        query = query.where(BounceEvent.id < before)
    return _listing(list(db.session.execute(query.limit(limit + 1)).all()), limit)


def suppressions(after: SuppressionCursor | None, limit: int) -> Listing:
    """Suppressed subscribers after the cursor's row: most recently suppressed first, unknown times last.

    Two index ranges, not one OR: those with a time, newest first, then those without, newest id first.
    """
    timed = Subscriber.suppressed_at.is_not(None)
    rows: list[Subscriber] = []
    if after is None or after[0] is not None:
        rows, after = _suppressed(timed, after, limit + 1), None
    if len(rows) <= limit:
        rows += _suppressed(Subscriber.suppressed_at.is_(None), after, limit + 1 - len(rows))
    return _listing(rows, limit)


def _suppressed(section: ColumnElement[bool], after: SuppressionCursor | None, limit: int) -> list[Subscriber]:
    """Up to ``limit`` suppressed subscribers of ``section`` that come after the cursor's row, in list order."""
    query = db.select(Subscriber).where(Subscriber.status == SubscriberStatus.SUPPRESSED.value, section)
    if after is not None:
        moment, subscriber_id = after
        query = query.where(
            Subscriber.id < subscriber_id
            if moment is None
            else tuple_(Subscriber.suppressed_at, Subscriber.id) < (moment, subscriber_id)
        )
    query = query.order_by(Subscriber.suppressed_at.desc(), Subscriber.id.desc()).limit(limit)
    return list(db.session.execute(query).scalars())
