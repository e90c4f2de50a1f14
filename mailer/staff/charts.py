"""The dashboard charts' figures, aggregated in SQL: audience week by week, per topic, and per digest.

Read-side only. Every query is a GROUP BY whose result is a few dozen rows, whatever the audience size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import BigInteger, Integer, case, cast, extract, func, literal, literal_column, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from ..extensions import db
from ..models import ConsentEvent, Delivery, Digest, Subscriber, SubscriberStatus, Timestamp, Topic, utcnow

#: Weeks shown by the audience chart, the current (partial) week last.
WEEKS = 26
#: Digests shown by the per-digest chart.
DIGESTS = 20
#: How long after a digest went out an unsubscribe counts against it.
UNSUBSCRIBE_WINDOW = timedelta(days=7)
WEEK_SECONDS = 7 * 24 * 3600
LEFT = (SubscriberStatus.UNSUBSCRIBED.value, SubscriberStatus.SUPPRESSED.value)


class EpochSeconds(FunctionElement):
    """Whole seconds since 1970-01-01 UTC of a timestamp column, on SQLite and PostgreSQL alike."""

    type = BigInteger()
    inherit_cache = True


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: object) -> str:
    """SQLite keeps UTC timestamps as text, which strftime('%s') reads."""
    (column,) = element.clauses
    return compiler.process(cast(func.strftime("%s", column), BigInteger), **kw)


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element: EpochSeconds, compiler: SQLCompiler, **kw: object) -> str:
    """PostgreSQL's timestamptz gives its epoch directly."""
    (column,) = element.clauses
    return compiler.process(cast(func.floor(extract("epoch", column)), BigInteger), **kw)


@dataclass(frozen=True)
class Week:
    """One week of the audience: who joined, who left, and how many were confirmed when it ended."""

    start: date
    joins: int
    leaves: int
    confirmed: int


@dataclass(frozen=True)
class DigestOutcome:
    """What became of one digest's deliveries, and how many of its readers unsubscribed soon after."""

    digest_id: int
    number: int | None
    subject: str
    went_out: datetime
    sent: int
    failed: int
    bounced: int
    unsubscribed: int

    @property
    def label(self) -> str:
        """How the chart names the digest: its number, else its id."""
        return f"#{self.number}" if self.number is not None else f"id {self.digest_id}"


def first_week(now: datetime, weeks: int = WEEKS) -> datetime:
    """Monday 00:00 UTC of the first of the ``weeks`` weeks that end with the one holding ``now``."""
    monday = (now.astimezone(UTC) - timedelta(days=now.astimezone(UTC).weekday())).date()
    return datetime(monday.year, monday.month, monday.day, tzinfo=UTC) - timedelta(weeks=weeks - 1)


def weekly_audience(now: datetime | None = None, weeks: int = WEEKS) -> list[Week]:
    """Joins, leaves and the confirmed total at each week's end, for the last ``weeks`` weeks (one query).

    Read from each subscriber's current record: a join is a ``confirmed_at`` (of anyone not pending again),
    a leave the ``unsubscribed_at`` or ``suppressed_at`` of a confirmed-once subscriber who is now
    unsubscribed or suppressed. The totals count back from today's confirmed subscribers.
    """
    start = first_week(now or utcnow(), weeks)
    left_at = case((Subscriber.status == SubscriberStatus.SUPPRESSED.value, Subscriber.suppressed_at),
                   else_=Subscriber.unsubscribed_at)  # fmt: skip
    joins = _per_week("join", Subscriber.confirmed_at, start).where(Subscriber.status != SubscriberStatus.PENDING.value)
    leaves = _per_week("leave", left_at, start).where(Subscriber.status.in_(LEFT), Subscriber.confirmed_at.is_not(None))
    now_confirmed = db.select(literal("now"), literal(0), func.count()).where(
        Subscriber.status == SubscriberStatus.CONFIRMED.value
    )
    counts: dict[str, dict[int, int]] = {"join": {}, "leave": {}, "now": {}}
    # Three filtered scans in one statement beat one pass grouping every row (bench/dashboard.py, 1M rows).
    for kind, week, count in db.session.execute(union_all(joins, leaves, now_confirmed)):
        counts[kind][int(week)] = count
    return _weeks(start.date(), weeks, counts)


def _per_week(kind: str, moment: ColumnElement, start: datetime) -> object:
    """Subscribers counted by the week (from ``start``) ``moment`` falls in."""
    # Constants inlined: PostgreSQL matches the GROUP BY to the selected expression only if they are equal.
    week = cast(
        (EpochSeconds(moment) - literal_column(str(int(start.timestamp())))) // literal_column(str(WEEK_SECONDS)),
        Integer,
    )
    return (
        db.select(literal(kind), week.label("week"), func.count())
        .where(moment >= literal(start, Timestamp))
        .group_by(week)
    )


def _weeks(start: date, weeks: int, counts: dict[str, dict[int, int]]) -> list[Week]:
    """The weeks, with totals counted back from now (stamps after this week, clocks ahead, are undone first)."""
    joins, leaves = counts["join"], counts["leave"]
    net = {week: joins.get(week, 0) - leaves.get(week, 0) for week in {*joins, *leaves}}
    confirmed = counts["now"].get(0, 0) - sum(change for week, change in net.items() if week >= weeks)
    result = []
    for index in reversed(range(weeks)):
        result.append(Week(start + timedelta(weeks=index), joins.get(index, 0), leaves.get(index, 0), confirmed))
        confirmed -= net.get(index, 0)
    return result[::-1]


def topic_audience() -> dict[str, int]:
    """Confirmed subscribers per topic (one subscriber counts under each topic they chose)."""
    rows = db.session.execute(
        db.select(Subscriber.topics, func.count())
        .where(Subscriber.status == SubscriberStatus.CONFIRMED.value)
        .group_by(Subscriber.topics)
    )
    totals = dict.fromkeys(Topic.names(), 0)
    for mask, count in rows:
        for name in Topic(mask).to_names():
            totals[name] += count
    return totals


def digest_outcomes(limit: int = DIGESTS) -> list[DigestOutcome]:
    """The newest real digests that went out (no test sends or reminders), oldest first, with their outcomes."""
    went_out = func.coalesce(Digest.sent_at, Digest.started_at)
    digests = db.session.execute(
        db.select(Digest.id, Digest.number, Digest.subject, went_out)
        .where(Digest.is_test.is_(False), Digest.kind == "digest", Digest.started_at.is_not(None))
        .order_by(Digest.id.desc())
        .limit(limit)
    ).all()
    if not digests:
        return []
    statuses = _delivery_counts([d.id for d in digests])
    unsubscribed = unsubscribed_after({d.id: d[3] for d in digests})
    return [
        DigestOutcome(d.id, d.number, d.subject, d[3], statuses.get((d.id, "sent"), 0),
                      statuses.get((d.id, "failed"), 0), statuses.get((d.id, "bounced"), 0), unsubscribed.get(d.id, 0))
        for d in reversed(digests)
    ]  # fmt: skip


def _delivery_counts(digest_ids: list[int]) -> dict[tuple[int, str], int]:
    """Deliveries counted by digest and status."""
    rows = db.session.execute(
        db.select(Delivery.digest_id, Delivery.status, func.count())
        .where(Delivery.digest_id.in_(digest_ids))
        .group_by(Delivery.digest_id, Delivery.status)
    )
    return {(digest_id, status): count for digest_id, status, count in rows}


def unsubscribed_after(went_out: dict[int, datetime]) -> dict[int, int]:
    """Per digest, the subscribers it reached (delivery "sent") who unsubscribed within 7 days after (one query).

    A subscriber counts once per digest however often they unsubscribed, and under every digest whose
    window holds the unsubscribe. Unsubscribes by any route count (link, one-click, mail, console).
    """
    windows = union_all(
        *(
            db.select(literal(digest_id).label("digest_id"), literal(moment, Timestamp).label("opens"),
                      literal(moment + UNSUBSCRIBE_WINDOW, Timestamp).label("closes"))
            for digest_id, moment in went_out.items()
        )
    ).subquery()  # fmt: skip
    rows = db.session.execute(
        db.select(windows.c.digest_id, func.count(func.distinct(ConsentEvent.subscriber_id)))
        .join(Delivery, Delivery.digest_id == windows.c.digest_id)
        .join(ConsentEvent, ConsentEvent.subscriber_id == Delivery.subscriber_id)
        .where(
            Delivery.status == "sent",
            ConsentEvent.event == "unsubscribe",
            ConsentEvent.occurred_at >= windows.c.opens,
            ConsentEvent.occurred_at < windows.c.closes,
        )
        .group_by(windows.c.digest_id)
    )
    return {digest_id: count for digest_id, count in rows}
