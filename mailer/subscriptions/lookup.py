"""Finding subscribers and reading their history, for the console's subscriber pages."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Row, func

from ..extensions import db
from ..models import ConsentEvent, Delivery, Digest, Subscriber

#: Ids are 32-bit integers on every backend; a larger number names no subscriber.
MAX_ID = 2**31 - 1


def subscriber_by_id(subscriber_id: int) -> Subscriber | None:
    """The subscriber with this id, or None."""
    return db.session.get(Subscriber, subscriber_id) if 0 < subscriber_id <= MAX_ID else None


def find_by_address(text: str, limit: int) -> list[Subscriber]:
    """Subscribers whose address contains ``text`` (case-insensitive, taken literally), newest first."""
    query = db.select(Subscriber).where(contains_text(text))
    return list(db.session.execute(query.order_by(Subscriber.id.desc()).limit(limit)).scalars())


def contains_text(text: str) -> ColumnElement[bool]:
    """The condition "the address contains ``text``", case-insensitive, LIKE wildcards taken literally."""
    pattern = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return func.lower(Subscriber.email).like(pattern, escape="\\")


def consent_log(subscriber_id: int) -> list[ConsentEvent]:
    """The subscriber's consent events, oldest first."""
    query = db.select(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber_id).order_by(ConsentEvent.id)
    return list(db.session.execute(query).scalars())


def recent_deliveries(subscriber_id: int, limit: int) -> list[Row[tuple[Delivery, str]]]:
    """The subscriber's latest deliveries with their digest's subject, newest first."""
    query = (
        db.select(Delivery, Digest.subject)
        .join(Digest, Digest.id == Delivery.digest_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(query).all())
