"""The schema. Constraints live here (and so in the migrations), not only in Python."""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Topic(enum.IntFlag):
    """Digest topics; a subscriber's choice is stored as the bitwise OR of these."""

    MEETINGS = 1
    PROJECTS = 2
    NEWS = 4

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Topic names in the fixed order digests group them."""
        return ("meetings", "projects", "news")

    @classmethod
    def from_names(cls, names: list[str] | tuple[str, ...] | set[str]) -> Topic:
        """Combine topic names into a mask; raise ValueError on an unknown name."""
        mask = cls(0)
        for name in names:
            if name not in cls.names():
                raise ValueError(f"unknown topic: {name!r}")
            mask |= cls[name.upper()]
        return mask

    def to_names(self) -> list[str]:
        """Return this mask's topic names in the fixed order."""
        return [n for n in Topic.names() if self & Topic[n.upper()]]


ALL_TOPICS = int(Topic.MEETINGS | Topic.PROJECTS | Topic.NEWS)

#: How each topic is named to readers: form labels and digest headings.
TOPIC_LABELS = {"meetings": "Meetings", "projects": "Projects", "news": "News"}

#: The longest slug a meeting, project or news item may have.
SLUG_LENGTH = 120


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        """Store UTC; refuse naive datetimes, which are always a bug."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Timestamp = UTCDateTime()


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL text for a CHECK that ``column`` is one of ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


#: The most days before a meeting a reminder may come.
MAX_REMINDER_DAYS = 30


class SubscriberStatus(enum.StrEnum):
    """Where a subscriber stands."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"


SUBSCRIBER_STATUSES = tuple(s.value for s in SubscriberStatus)


class Subscriber(db.Model):
    """One address; unique regardless of case through an index on lower(email)."""

    __tablename__ = "subscribers"
    __table_args__ = (
        CheckConstraint(_in("status", SUBSCRIBER_STATUSES), name="status"),
        CheckConstraint(f"topics >= 0 AND topics <= {ALL_TOPICS}", name="topics"),
        Index("ix_subscribers_status_topics", "status", "topics"),
        # The console's suppression list, most recent first, paged by (suppressed_at, id).
        Index("ix_subscribers_status_suppressed", "status", "suppressed_at", "id"),
        CheckConstraint(f"reminder_days IS NULL OR (reminder_days >= 1 AND reminder_days <= {MAX_REMINDER_DAYS})",
                        name="reminder_days"),
        # The few who chose a meeting reminder, found every few minutes without reading everyone.
        Index("ix_subscribers_reminder_days", "reminder_days", sqlite_where=text("reminder_days IS NOT NULL"),
              postgresql_where=text("reminder_days IS NOT NULL")),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.PENDING.value)
    topics: Mapped[int] = mapped_column(Integer, default=ALL_TOPICS)
    # A fresh nonce per confirmation email makes confirm links single-use.
    confirm_nonce: Mapped[str | None] = mapped_column(String(32))
    # Bumping this revokes every preferences/unsubscribe link issued before.
    link_version: Mapped[int] = mapped_column(Integer, default=1)
    suppressed_reason: Mapped[str | None] = mapped_column(Text)
    suppressed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: A reminder this many days before each upcoming meeting (subscribers of meetings only), or None.
    reminder_days: Mapped[int | None] = mapped_column(Integer)

    consent_events: Mapped[list[ConsentEvent]] = relationship(back_populates="subscriber")


Index("uq_subscribers_email_lower", func.lower(Subscriber.email), unique=True)


CONSENT_EVENTS = (
    "subscribe",
    "confirm",
    "preferences",
    "unsubscribe",
    "resubscribe",
    "suppress",
    "import",
    "complaint",
    "unsuppress",
)


class ConsentEvent(db.Model):
    """Append-only log of consent: triggers refuse UPDATE, and DELETE while the subscriber exists.

    The one way to remove events is to erase their subscriber (``subscriptions/erasure.py``).
    """

    __tablename__ = "consent_events"
    __table_args__ = (CheckConstraint(_in("event", CONSENT_EVENTS), name="event"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    consent_version: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict | None] = mapped_column(JSON)

    subscriber: Mapped[Subscriber] = relationship(back_populates="consent_events")


MEETING_KINDS = ("ministerial", "working-group", "senior-officials", "workshop", "other")
MEETING_STATUSES = ("upcoming", "held", "postponed", "cancelled")
PROJECT_STATUSES = ("endorsed", "implementing", "completed")


class ContentMixin:
    """Slug and timestamps shared by meetings, projects and news items."""

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(SLUG_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # Archived items stay (sent digests keep their snapshots) but leave the public pages and new digests.
    archived_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Meeting(ContentMixin, db.Model):
    """A meeting: ministerial, working-group and the like."""

    __tablename__ = "meetings"
    __table_args__ = (
        CheckConstraint(_in("kind", MEETING_KINDS), name="kind"),
        CheckConstraint(_in("status", MEETING_STATUSES), name="status"),
        CheckConstraint("end_date >= start_date", name="dates"),
        CheckConstraint("number IS NULL OR number > 0", name="number"),
    )

    kind: Mapped[str] = mapped_column(String(24))
    number: Mapped[int | None] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    city: Mapped[str | None] = mapped_column(String(120))
    economy: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    #: The iCalendar SEQUENCE: one more on every change to what the meeting's calendar event shows.
    sequence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The feed it came from (its URL), or None for items typed in or imported from a file.
    source: Mapped[str | None] = mapped_column(String(2000))


class Project(ContentMixin, db.Model):
    """A project the working group runs or endorsed."""

    __tablename__ = "projects"
    __table_args__ = (
        CheckConstraint(_in("status", PROJECT_STATUSES), name="status"),
        CheckConstraint("year IS NULL OR (year >= 1989 AND year <= 2200)", name="year"),
    )

    reference: Mapped[str | None] = mapped_column(String(60))
    status: Mapped[str] = mapped_column(String(16))
    funding_source: Mapped[str | None] = mapped_column(String(200))
    year: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))


class NewsItem(ContentMixin, db.Model):
    """A short news item."""

    __tablename__ = "news_items"

    published_on: Mapped[date] = mapped_column(Date)
    body: Mapped[str] = mapped_column(Text)
    #: Where the whole story is (a feed entry's link), shown as "Read more".
    link: Mapped[str | None] = mapped_column(String(2000))
    #: The feed it came from (its URL), or None for items typed in or imported from a file.
    source: Mapped[str | None] = mapped_column(String(2000))


class MeetingChange(db.Model):
    """One save that changed what a meeting's readers rely on (dates, place, status, title): its public history.

    ``changes`` maps each field to ``[old, new]`` (dates as ISO strings)."""

    __tablename__ = "meeting_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"), index=True)
    changed_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    changes: Mapped[dict] = mapped_column(JSON)


class DigestStatus(enum.StrEnum):
    """Where a digest stands: scheduled or preparing, going out (queued, sending, paused), then done."""

    SCHEDULED = "scheduled"
    PREPARING = "preparing"
    QUEUED = "queued"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


DIGEST_STATUSES = tuple(s.value for s in DigestStatus)

#: What a digests row is: a digest, or a meeting reminder sent through the same engine.
DIGEST_KINDS = ("digest", "reminder")


class Digest(db.Model):
    """One digest: the content snapshot it carries and when it went out."""

    __tablename__ = "digests"
    __table_args__ = (
        CheckConstraint(_in("status", DIGEST_STATUSES), name="status"),
        CheckConstraint(_in("kind", DIGEST_KINDS), name="kind"),
        Index("uq_digests_number", "number", unique=True),
        Index("uq_digests_reminder_key", "reminder_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The number readers see (Digest 12, /archive/12): real digests only, in order; test sends have none.
    number: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default="digest", server_default="digest")
    #: A reminder's "meeting:<id>:<start date>:<days>": one reminder per meeting, date and lead time.
    reminder_key: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    is_test: Mapped[bool] = mapped_column(Boolean, default=False)
    test_to: Mapped[str | None] = mapped_column(String(254))
    # Content changed in (since, until] is what this digest carries; content is that snapshot.
    since: Mapped[datetime | None] = mapped_column(Timestamp)
    until: Mapped[datetime] = mapped_column(Timestamp)
    content: Mapped[dict] = mapped_column(JSON)
    topics: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    scheduled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    started_at: Mapped[datetime | None] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"))
    # Why the send engine (or a person) paused it; errors about our side in a row, for auto-pause.
    paused_reason: Mapped[str | None] = mapped_column(Text)
    sender_errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="digest")


class DeliveryStatus(enum.StrEnum):
    """Where one delivery stands: queued, claimed by a sender (sending), then its outcome."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    BOUNCED = "bounced"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


DELIVERY_STATUSES = tuple(s.value for s in DeliveryStatus)


class Delivery(db.Model):
    """One digest to one subscriber; the unique pair is what makes sending idempotent.

    A sender claims a row (queued -> sending, with ``claimed_by`` and ``claimed_at``) before it
    sends; the claim is a lease that its process renews, and the sweep returns rows whose lease
    ran out to the queue.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("digest_id", "subscriber_id", name="uq_deliveries_digest_subscriber"),
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_deliveries_digest_status", "digest_id", "status"),
        # What a sender claims next: only queued rows are in it, so it stays small as a digest goes out.
        Index("ix_deliveries_claimable", "digest_id", "id", sqlite_where=text("status = 'queued'"),
              postgresql_where=text("status = 'queued'")),
        Index("ix_deliveries_leases", "claimed_at", sqlite_where=text("status = 'sending'"),
              postgresql_where=text("status = 'sending'")),
        # A bounce that quotes our Message-ID finds its delivery.
        Index("ix_deliveries_message_id", "message_id"),
    )  # fmt: skip

    id: Mapped[int] = mapped_column(primary_key=True)
    digest_id: Mapped[int] = mapped_column(ForeignKey("digests.id"))
    # NULL once the subscriber was erased: the row stays, without the address, so the digest's counts hold.
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    topics: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_smtp_code: Mapped[int | None] = mapped_column(Integer)
    last_smtp_reply: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # A transient failure waits until then before it is claimed again.
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)

    digest: Mapped[Digest] = relationship(back_populates="deliveries")


class ErasedAddress(db.Model):
    """An address erased on its owner's request, kept only as a keyed hash so imports cannot bring it back."""

    __tablename__ = "erased_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    # HMAC-SHA256 (SECRET_KEY) of the lower-cased address, in hex.
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    erased_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)


STAFF_ROLES = ("admin", "editor")


class StaffUser(db.Model):
    """A member of the communications staff who signs in to the console."""

    __tablename__ = "staff_users"
    __table_args__ = (CheckConstraint(_in("role", STAFF_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="editor")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # Part of every session's id: bumping it (sign-out, password change or reset, switching the
    # account off) ends every session signed in before.
    session_version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # SHA-256 of the nonce in the one password-reset link that works now; cleared when it is used.
    password_reset_nonce_hash: Mapped[str | None] = mapped_column(String(64))
    # The TOTP secret, encrypted with a key derived from SECRET_KEY (see mailer/staff/service.py).
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    # The last TOTP time step accepted, so a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    password_changed_at: Mapped[datetime | None] = mapped_column(Timestamp)

    @property
    def is_active(self) -> bool:
        """Flask-Login: only active accounts may sign in."""
        return self.active

    @property
    def is_authenticated(self) -> bool:
        """Flask-Login: a loaded staff user is authenticated."""
        return True

    @property
    def is_anonymous(self) -> bool:
        """Flask-Login: never anonymous."""
        return False

    def get_id(self) -> str:
        """Flask-Login: the session key, "id:session_version", so a bumped version voids older sessions."""
        return f"{self.id}:{self.session_version}"


Index("uq_staff_users_email_lower", func.lower(StaffUser.email), unique=True)


class AuditEntry(db.Model):
    """Who did what to which thing, for staff actions, imports and sends."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(254))
    detail: Mapped[dict | None] = mapped_column(JSON)
    ip: Mapped[str | None] = mapped_column(String(45))


class BounceKind(enum.StrEnum):
    """What came back about an email: a bounce, hard or soft, a complaint, or an unsubscribe by mail."""

    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"


BOUNCE_KINDS = tuple(k.value for k in BounceKind)


class BounceEvent(db.Model):
    """One bounce, complaint or unsubscribe-by-mail received (by mail or a provider's webhook).

    ``event_key`` is the report's Message-ID or the provider's event id: the same report twice is one row.
    """

    __tablename__ = "bounce_events"
    __table_args__ = (
        CheckConstraint(_in("kind", BOUNCE_KINDS), name="kind"),
        Index("ix_bounce_events_subscriber_received", "subscriber_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Erasing a subscriber erases their bounces too (a diagnostic often quotes the address).
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"), index=True)
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("digests.id", ondelete="SET NULL"), index=True)
    status: Mapped[str | None] = mapped_column(String(16))
    diagnostic: Mapped[str | None] = mapped_column(Text)


class DigestSchedule(db.Model):
    """The automatic digest cadence (one row at most), in ORG_TIMEZONE, with its review window.

    ``next_run_at`` is the next run the rule gives; ``due_at`` moves a run later when its review
    email could only go out late; ``review_sent_for`` and ``held_for`` name the run (its
    ``next_run_at``) that editors were asked about and the one they held.
    """

    __tablename__ = "digest_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(80))
    #: Every-N-weeks rules count their weeks from this date.
    anchor: Mapped[date] = mapped_column(Date)
    review_minutes: Mapped[int] = mapped_column(Integer, default=0)
    #: Topic name -> the fewest new items that make the topic worth a digest; a digest goes out when one topic has.
    min_items: Mapped[dict] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_run_at: Mapped[datetime] = mapped_column(Timestamp)
    due_at: Mapped[datetime | None] = mapped_column(Timestamp)
    review_sent_for: Mapped[datetime | None] = mapped_column(Timestamp)
    held_for: Mapped[datetime | None] = mapped_column(Timestamp)
    held_by: Mapped[str | None] = mapped_column(String(254))
    last_run_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: What the last run did, in words: "sent digest 12", "skipped: nothing new", "held by ann@…".
    last_outcome: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(254))


FEED_KINDS = ("news", "meetings")


class Feed(db.Model):
    """An RSS/Atom feed (news) or an iCalendar URL (meetings) fetched on a schedule."""

    __tablename__ = "feeds"
    __table_args__ = (CheckConstraint(_in("kind", FEED_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    kind: Mapped[str] = mapped_column(String(16))
    #: The kind imported meetings get (an iCalendar feed says nothing of it).
    meeting_kind: Mapped[str | None] = mapped_column(String(24))
    title: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(254))
    # Conditional GET: what the server answered last time.
    etag: Mapped[str | None] = mapped_column(String(255))
    last_modified: Mapped[str | None] = mapped_column(String(64))
    next_fetch_at: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_success_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: The last fetch's failure in words, None once a fetch succeeds; failures in a row.
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)

    entries: Mapped[list[FeedEntry]] = relationship(back_populates="feed", cascade="all, delete-orphan",
                                                    passive_deletes=True)  # fmt: skip


class FeedEntry(db.Model):
    """One entry (guid) or event (UID) of a feed and the item it became; it stays when staff delete the item.

    ``fields`` are the values the feed gave last time: a field staff changed since differs from
    them, and a re-fetch leaves it alone.
    """

    __tablename__ = "feed_entries"
    __table_args__ = (UniqueConstraint("feed_id", "key", name="uq_feed_entries_feed_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    #: SHA-256 (hex) of the guid or UID, which may be long; ``guid`` keeps it whole.
    key: Mapped[str] = mapped_column(String(64))
    guid: Mapped[str] = mapped_column(Text)
    section: Mapped[str] = mapped_column(String(16))
    slug: Mapped[str] = mapped_column(String(SLUG_LENGTH))
    fields: Mapped[dict] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(Timestamp, default=utcnow)

    feed: Mapped[Feed] = relationship(back_populates="entries")
