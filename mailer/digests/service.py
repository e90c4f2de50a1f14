"""Digests: create one with its deliveries, hand it to the send engine, and report how it went.

``create_digest`` snapshots the deliveries in one INSERT ... SELECT and commits before the
send engine (``mailer.sending``) is asked to ring; ``variant_factory`` is what the engine asks
for each topic variant's message, for digests and for meeting reminders (``mailer.reminders``,
digests rows of kind "reminder") alike. Sending itself (claims, outcomes, retries, pause) is the
engine's business.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from redis.exceptions import LockError
from sqlalchemy import ColumnElement, Integer, literal

from ..content.calendar import calendar_url
from ..content.display import date_range, item_url, place
from ..extensions import db
from ..mail import (
    ListMail,
    MessageFactory,
    PermanentSMTPError,
    RenderedEmail,
    TransientSMTPError,
    message_factory,
    render_email,
    send_message,
)
from ..models import (
    ALL_TOPICS,
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Digest,
    DigestStatus,
    Subscriber,
    Timestamp,
    Topic,
    utcnow,
)
from ..redis_client import get_redis, redis_key
from ..sending.control import doorbell
from ..subscriptions.links import subscribe_url
from ..subscriptions.service import reminder_label
from ..tokens import make_token
from .compose import compose_next, render_content, subject_for
from .links import archive_index_url, archive_page_url, test_page_url

#: Tasks queued by name after the commit (the service never imports its tasks).
TEST_COPY_TASK = "mailer.digests.send_test_copy"
RELEASE_TASK = "mailer.digests.release_scheduled"


#: Ids are 32-bit integers on every backend; a larger number in a URL names no digest.
MAX_ID = 2**31 - 1

#: Statuses of a digest that may have reached someone's inbox, where its "view in browser" link points.
REACHED_STATUSES = (
    DigestStatus.PREPARING,
    DigestStatus.QUEUED,
    DigestStatus.SENDING,
    DigestStatus.PAUSED,
    DigestStatus.SENT,
)


class DigestError(ValueError):
    """A digest that cannot be created or sent; the message says why in plain words."""


def create_digest(*, at: datetime | None = None, test_to: str | None = None, actor: str = "cli") -> Digest:
    """Create the next digest (scheduled for ``at``, or a test copy to ``test_to``), commit, then queue it.

    A digest to send now is ``preparing``: a worker snapshots its deliveries (a million rows take
    seconds) and hands it to the send engine, so the command or the click returns at once.
    """
    address = _checked_options(at, test_to, utcnow())
    # One creation at a time across every web and CLI process: a second click waits, then finds
    # the first digest committed and its content claimed, instead of sending the same items twice.
    try:
        with get_redis().lock(redis_key("digest-create"), timeout=120, blocking_timeout=30):
            digest = _create_committed(at, address, actor)
    except LockError:
        raise DigestError("another digest is being created right now; try again in a minute") from None
    if address is not None:
        current_app.extensions["celery"].send_task(TEST_COPY_TASK, args=[digest.id])
    elif at is None:
        # Beat releases preparing digests too, should this doorbell be lost.
        doorbell(RELEASE_TASK, [])
    return digest


def _create_committed(at: datetime | None, address: str | None, actor: str) -> Digest:
    """Compose, insert and commit the digest row."""
    now = utcnow()
    next_digest = compose_next(until=now)
    if next_digest.is_empty:
        since = f"since {_org_time(next_digest.since)}" if next_digest.since else "yet"
        raise DigestError(f"nothing new {since}: there is no digest to send")
    digest = Digest(
        # Numbers are taken under the creation lock; the unique index is the backstop should two race.
        number=None if address else _next_number(),
        subject=subject_for(next_digest.content, ALL_TOPICS, now),
        status=DigestStatus.SCHEDULED if at else DigestStatus.QUEUED if address else DigestStatus.PREPARING,
        is_test=address is not None,
        test_to=address,
        since=next_digest.since,
        until=now,
        content=next_digest.content,
        topics=next_digest.topics,
        scheduled_at=at,
    )
    db.session.add(digest)
    db.session.flush()
    db.session.add(
        AuditEntry(
            actor=actor,
            action="digest.test" if address else "digest.create",
            target=f"digest:{digest.id}",
            detail={"subject": digest.subject, "scheduled_at": at.isoformat() if at else None, "test_to": address},
        )
    )
    db.session.commit()
    return digest


def _org_time(moment: datetime) -> str:
    """``29 November 2026 21:00 +08``: a moment as the organisation's local time (ORG_TIMEZONE)."""
    return moment.astimezone(ZoneInfo(current_app.config["ORG_TIMEZONE"])).strftime("%-d %B %Y %H:%M %Z")


def _next_number() -> int:
    """The number the next real digest takes: one more than the highest so far."""
    return db.session.execute(db.select(db.func.coalesce(db.func.max(Digest.number), 0) + 1)).scalar_one()


def _checked_options(at: datetime | None, test_to: str | None, now: datetime) -> str | None:
    """The normalised test address (or None); DigestError for a past time, a bad address or both options."""
    if at is not None and test_to is not None:
        raise DigestError("a test copy is sent at once; --at and --test-to do not go together")
    if at is not None and at <= now:
        raise DigestError(f"the time to send, {at.isoformat()}, is not in the future")
    if test_to is None:
        return None
    try:
        checked = validate_email(test_to, check_deliverability=False, allow_smtputf8=False, test_environment=True)
        return checked.ascii_email or checked.normalized
    except EmailNotValidError as exc:
        raise DigestError(f"not a valid email address: {exc}") from None


def snapshot_deliveries(digest: Digest, *only: ColumnElement[bool]) -> int:
    """One queued delivery per confirmed subscriber whose topics meet the digest's (and who match ``only``).

    One INSERT ... SELECT, whatever the audience; returns how many rows it made.
    """
    variant = Subscriber.topics.op("&", return_type=Integer)(digest.topics)
    rows = db.select(
        literal(digest.id, Integer),
        Subscriber.id,
        Subscriber.email,
        variant,
        literal(DeliveryStatus.QUEUED),
        literal(0, Integer),
        literal(utcnow(), Timestamp),
    ).where(Subscriber.status == "confirmed", variant != 0, *only)
    columns = ["digest_id", "subscriber_id", "email", "topics", "status", "attempts", "updated_at"]
    # SQLAlchemy drops an INSERT's row count on PostgreSQL unless asked to keep it.
    insert = db.insert(Delivery.__table__).from_select(columns, rows)
    return db.session.execute(insert, execution_options={"preserve_rowcount": True}).rowcount


def release_due(now: datetime | None = None) -> dict[int, int]:
    """Snapshot the deliveries of digests preparing or scheduled and due, one transaction each.

    Returns the released digests with their delivery counts; one that reaches nobody is sent
    there and then (and still claims its content).
    """
    now = now or utcnow()
    due = (Digest.status == DigestStatus.PREPARING) | (
        (Digest.status == DigestStatus.SCHEDULED) & (Digest.scheduled_at <= now)
    )
    released = {}
    for digest_id in db.session.execute(db.select(Digest.id).where(due).order_by(Digest.id)).scalars().all():
        # Only the process whose UPDATE moves the row on releases it (a second one waits, then finds nothing).
        claimed = db.session.execute(
            db.update(Digest).where(Digest.id == digest_id, due).values(status=DigestStatus.QUEUED)
        )
        if claimed.rowcount == 1:
            deliveries = snapshot_deliveries(db.session.get(Digest, digest_id))
            if deliveries:
                released[digest_id] = deliveries
            else:
                db.session.execute(
                    db.update(Digest)
                    .where(Digest.id == digest_id)
                    .values(status=DigestStatus.SENT, started_at=now, sent_at=now)
                )
        db.session.commit()
    return released


def variant_factory(digest_id: int, topics: int) -> MessageFactory:
    """The message factory for one topic variant of a digest: rendered, CSS-inlined and encoded once."""
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise LookupError(f"no digest {digest_id}")
    return _factory(digest, topics)


def _factory(digest: Digest, topics: int) -> MessageFactory:
    """Render one topic variant of ``digest`` (or its meeting reminder) and prepare its message factory."""
    if digest.kind == "reminder":
        subject, rendered = digest.subject, _render_reminder(digest)
    else:
        subject, rendered = render_content(
            digest.content, topics & digest.topics, digest.until, online_url(digest), digest.is_test
        )
    return message_factory(rendered, subject, _list_mail(digest, topics))


def _render_reminder(digest: Digest) -> RenderedEmail:
    """A meeting reminder: the meeting it names, its page and calendar links, and why the reader gets it."""
    (meeting,) = digest.content["meetings"]
    start, end = date.fromisoformat(meeting["start_date"]), date.fromisoformat(meeting["end_date"])
    return render_email(
        "reminder",
        org_name=current_app.config["ORG_NAME"],
        subject=digest.subject,
        meeting=meeting,
        when=date_range(start, end),
        where=place(meeting["city"], meeting["economy"]),
        page_url=online_url(digest),
        calendar_url=calendar_url(meeting["slug"], current_app.config["BASE_URL"]),
        lead_time=reminder_label(reminder_days(digest)),
    )


def reminder_days(digest: Digest) -> int:
    """How many days before its meeting a reminder was asked for: the last part of its ``reminder_key``."""
    return int(digest.reminder_key.rsplit(":", 1)[1])


def _list_mail(digest: Digest, topics: int) -> ListMail:
    """The list headers of one topic variant; a test copy (no number) or a reminder names no archive page."""
    base_url = current_app.config["BASE_URL"]
    if digest.kind == "reminder":
        variant = "reminder"
    else:
        variant = "test" if digest.is_test else "-".join(Topic(topics & digest.topics).to_names())
    return ListMail(
        archive_url=archive_index_url(base_url),
        help_url=subscribe_url(base_url),
        subscribe_url=subscribe_url(base_url),
        campaign=str(digest.id),
        variant=variant,
        archived_at=None if digest.number is None else archive_page_url(base_url, digest.number),
    )


def online_url(digest: Digest) -> str:
    """The digest's "view in browser" link: its numbered archive page, a test copy's page with its token,
    or for a reminder (which has no archive page) its meeting's page."""
    base_url = current_app.config["BASE_URL"]
    if digest.kind == "reminder":
        return item_url("meetings", digest.content["meetings"][0]["slug"], base_url)
    if digest.is_test:
        return test_page_url(base_url, digest.id, make_token("archive", digest.id))
    return archive_page_url(base_url, digest.number)


def send_test_copy(digest_id: int) -> None:
    """Send a test digest's single copy to its test address; personal links point to the home page."""
    digest = db.session.get(Digest, digest_id)
    if digest is None or not digest.is_test or digest.status != DigestStatus.QUEUED:
        return
    home = current_app.config["BASE_URL"] + "/"
    try:
        send_message(_factory(digest, ALL_TOPICS), digest.test_to, {"preferences_url": home, "unsubscribe_url": home})
    except (PermanentSMTPError, TransientSMTPError) as exc:
        digest.status = DigestStatus.FAILED
        db.session.add(
            AuditEntry(
                actor="worker",
                action="digest.test_failed",
                target=f"digest:{digest.id}",
                detail={"smtp_code": exc.code, "smtp_reply": exc.reply},
            )
        )
    else:
        digest.status, digest.sent_at = DigestStatus.SENT, utcnow()
    db.session.commit()


def undelivered(digest_id: int, limit: int) -> list[Delivery]:
    """The digest's deliveries that failed or bounced, with the server's reply, oldest first."""
    query = db.select(Delivery).where(
        Delivery.digest_id == digest_id, Delivery.status.in_((DeliveryStatus.FAILED, DeliveryStatus.BOUNCED))
    )
    return list(db.session.execute(query.order_by(Delivery.id).limit(limit)).scalars())


def find_digest(digest_id: int) -> Digest | None:
    """The digest with this id, or None (also for ids no backend can hold)."""
    return db.session.get(Digest, digest_id) if 0 < digest_id <= MAX_ID else None


def delivery_counts(digest_id: int) -> dict[str, int]:
    """How many of the digest's deliveries are in each status."""
    rows = db.session.execute(
        db.select(Delivery.status, db.func.count()).where(Delivery.digest_id == digest_id).group_by(Delivery.status)
    )
    return {status: count for status, count in rows}


def audience_by_variant(topics: int) -> dict[int, int]:
    """Confirmed subscribers a digest of ``topics`` would reach, by topic variant (their topics it carries)."""
    rows = db.session.execute(
        db.select(Subscriber.topics, db.func.count())
        .where(Subscriber.status == "confirmed")
        .group_by(Subscriber.topics)
    )
    reached: Counter[int] = Counter()
    for subscriber_topics, count in rows:
        if subscriber_topics & topics:
            reached[subscriber_topics & topics] += count
    return dict(reached)


def time_to_finish(digest_id: int, remaining: int) -> tuple[float, str] | None:
    """Seconds left for ``remaining`` deliveries and the rate that was assumed, or None when unknown.

    The rate is SEND_RATE when it is set, else the deliveries sent in the last minute.
    """
    if not remaining:
        return None
    rate = current_app.config.get("SEND_RATE")
    if rate:
        return remaining / rate, f"SEND_RATE, {rate:g} a second"
    since = utcnow() - timedelta(minutes=1)
    last_minute = db.session.execute(
        db.select(db.func.count()).where(Delivery.digest_id == digest_id, Delivery.sent_at >= since)
    ).scalar_one()
    if not last_minute:
        return None
    return remaining / (last_minute / 60), f"the last minute's pace, {last_minute} a minute"


def is_public(digest: Digest) -> bool:
    """True when the digest has a public archive page: a real, numbered one that is going or went out."""
    if digest.is_test or digest.number is None:
        return False
    return digest.status in REACHED_STATUSES or (
        digest.status == DigestStatus.CANCELLED and digest.started_at is not None
    )


def sent_digests(limit: int = 50) -> list[Digest]:
    """The public archive: sent, numbered (non-test) digests, newest first."""
    query = db.select(Digest).where(Digest.status == DigestStatus.SENT, Digest.number.is_not(None))
    return list(db.session.execute(query.order_by(Digest.sent_at.desc(), Digest.id.desc()).limit(limit)).scalars())


def archived_digest(number: int) -> Digest | None:
    """Digest ``number`` when its archive page may be shown to anyone, else None."""
    if not 0 < number <= MAX_ID:
        return None
    digest = db.session.execute(db.select(Digest).where(Digest.number == number)).scalar_one_or_none()
    return digest if digest is not None and is_public(digest) else None


def find_test_send(digest_id: int) -> Digest | None:
    """The test send with this id (its page is for holders of its token), or None."""
    digest = find_digest(digest_id)
    return digest if digest is not None and digest.is_test else None
