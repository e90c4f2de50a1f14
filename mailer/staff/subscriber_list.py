"""The console's subscriber list: filters read from the query string, pages of 50 newest first, by keyset.

Pages are ``ORDER BY id DESC LIMIT n`` below the last id shown (``?before=<id>``), never OFFSET, so the
millionth row costs what the first does. A filter value that cannot be read is ignored, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Row
from werkzeug.datastructures import MultiDict

from ..extensions import db
from ..models import SUBSCRIBER_STATUSES, ConsentEvent, Subscriber, Topic
from ..subscriptions.lookup import MAX_ID, contains_text
from ..text import without_control
from .timefmt import org_zone

MAX_QUERY = 254
#: How people joined, as the source of their first consent event; the filter takes any short word.
SOURCES = ("form", "widget", "api", "import", "staff")
MAX_SOURCE = ConsentEvent.__table__.c.source.type.length


@dataclass(frozen=True)
class ListFilter:
    """What the list is narrowed to; empty fields do not narrow it."""

    query: str = ""
    status: str = ""
    topics: tuple[str, ...] = ()
    source: str = ""
    joined_from: date | None = None
    joined_to: date | None = None
    before: int | None = None
    # The filters as query-string pairs, for the next page's link (without ``before``).
    args: dict[str, Any] = field(default_factory=dict, compare=False)


def read_filter(args: MultiDict[str, str]) -> ListFilter:
    """The filters in a query string; values that cannot be read are left out."""
    query = without_control(args.get("q", "")).strip()[:MAX_QUERY]
    status = args.get("status", "") if args.get("status", "") in SUBSCRIBER_STATUSES else ""
    topics = tuple(t for t in Topic.names() if t in args.getlist("topic"))
    source = without_control(args.get("source", "")).strip().lower()
    source = source if len(source) <= MAX_SOURCE else ""
    joined_from, joined_to = _day(args.get("from", "")), _day(args.get("to", ""))
    pairs = {"q": query, "status": status, "topic": list(topics), "source": source,
             "from": _iso(joined_from), "to": _iso(joined_to)}  # fmt: skip
    return ListFilter(query, status, topics, source, joined_from, joined_to, _id(args.get("before", "")),
                      {name: value for name, value in pairs.items() if value})  # fmt: skip


def _id(value: str) -> int | None:
    """A subscriber id (a positive 32-bit integer), or None."""
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        return None
    return int(value) if 0 < int(value) <= MAX_ID else None


def _iso(day: date | None) -> str:
    """The date as YYYY-MM-DD, or ""."""
    return day.isoformat() if day else ""


def _day(value: str) -> date | None:
    """A YYYY-MM-DD date, or None."""
    try:
        return date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None


def first_source() -> Any:
    """The source of a subscriber's first consent event (how they joined), as a correlated subquery."""
    return (
        db.select(ConsentEvent.source)
        .where(ConsentEvent.subscriber_id == Subscriber.id)
        .order_by(ConsentEvent.id)
        .limit(1)
        .correlate(Subscriber)
        .scalar_subquery()
    )


def subscriber_page(filters: ListFilter, size: int) -> tuple[list[Row[tuple[Subscriber, str | None]]], int | None]:
    """One page of subscribers with how they joined, newest first; and the ``before`` of the next page, if any."""
    query = db.select(Subscriber, first_source().label("source")).where(*_conditions(filters))
    if filters.before is not None:
        query = query.where(Subscriber.id < filters.before)
    rows = list(db.session.execute(query.order_by(Subscriber.id.desc()).limit(size + 1)).all())
    return rows[:size], rows[size - 1][0].id if len(rows) > size else None


def _conditions(filters: ListFilter) -> list[Any]:
    """The WHERE conditions of the filters that are set."""
    conditions: list[Any] = []
    if filters.query:
        conditions.append(contains_text(filters.query))
    if filters.status:
        conditions.append(Subscriber.status == filters.status)
    if filters.topics:
        conditions.append(Subscriber.topics.op("&")(int(Topic.from_names(filters.topics))) != 0)
    if filters.source:
        conditions.append(first_source() == filters.source)
    if filters.joined_from:
        conditions.append(Subscriber.created_at >= _midnight(filters.joined_from))
    if filters.joined_to:
        conditions.append(Subscriber.created_at < _midnight(filters.joined_to, days_after=1))
    return conditions


def _midnight(day: date, days_after: int = 0) -> datetime:
    """The start of ``day`` (plus ``days_after``) in the organisation's zone, in UTC: the console's dates."""
    try:
        return datetime.combine(day + timedelta(days=days_after), time(), tzinfo=org_zone()).astimezone(UTC)
    except OverflowError:  # 9999-12-31 plus a day, or a zone offset past year 1
        return datetime.max.replace(tzinfo=UTC) if day.year > 1 else datetime.min.replace(tzinfo=UTC)
