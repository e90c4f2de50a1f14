"""Meeting reminders: one email some days before each upcoming meeting, to the subscribers who asked for it.

A subscriber of the meetings topic may choose a reminder N days before each meeting
(``Subscriber.reminder_days``). Every few minutes ``send_due`` looks, for each N someone chose,
for upcoming meetings (not cancelled, held, postponed or archived) that start N days from
today in ORG_TIMEZONE, once the local time is past REMINDER_HOUR. Each (meeting, start date, N)
becomes one digests row of kind "reminder" whose deliveries go to the confirmed meetings
subscribers who chose N, and the send engine delivers it with every guarantee a digest has.

- Once: the row's ``reminder_key`` ("meeting:<id>:<start date>:<N>") is unique, so a second beat
  or worker racing this one gets an IntegrityError and makes nothing.
- Catch-up: a reminder missed on its day (nothing ran, the meeting was added or moved closer
  late, someone chose N since) still goes at or after REMINDER_HOUR on a later day, up to the
  day before the meeting; never on its first day or later, when it is no longer a reminder.
- A meeting moved to another date is a new key, so its readers are reminded of the new date; a
  meeting cancelled after its reminder went gets nothing more here (the next digest says so).

The service never imports its tasks: ``send_due`` returns what the task rings after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import ColumnElement, Integer
from sqlalchemy.exc import IntegrityError

from ..content.display import long_date, org_today
from ..content.schema import entry
from ..digests.service import snapshot_deliveries
from ..extensions import db
from ..models import AuditEntry, Digest, DigestStatus, Meeting, Subscriber, SubscriberStatus, Topic, utcnow
from ..subscriptions.service import reminder_label

#: The digests row's kind for a reminder.
KIND = "reminder"
#: Subjects are cut to the column's size; a long title gives way first.
SUBJECT_SIZE = Digest.__table__.c.subject.type.length


@dataclass(frozen=True)
class DueReminder:
    """A reminder that should go now: the meeting, the start date it is about and the lead time chosen."""

    meeting_id: int
    start_date: date
    days: int

    @property
    def key(self) -> str:
        """The reminder's unique key: one reminder per meeting, start date and lead time."""
        return f"meeting:{self.meeting_id}:{self.start_date.isoformat()}:{self.days}"


def _meetings_subscribers() -> ColumnElement[bool]:
    """The condition: confirmed subscribers of the meetings topic."""
    meetings = Subscriber.topics.op("&", return_type=Integer)(int(Topic.MEETINGS))
    return (Subscriber.status == SubscriberStatus.CONFIRMED.value) & (meetings != 0)


def _lead_times() -> list[int]:
    """Every reminder lead time (in days) some confirmed meetings subscriber chose."""
    query = db.select(Subscriber.reminder_days).where(_meetings_subscribers(), Subscriber.reminder_days.is_not(None))
    return sorted(db.session.execute(query.distinct()).scalars())


def due_reminders(now: datetime | None = None) -> list[DueReminder]:
    """The reminders that should go at ``now`` (default: now) and have not been made yet."""
    local = (now or utcnow()).astimezone(ZoneInfo(current_app.config["ORG_TIMEZONE"]))
    if local.hour < current_app.config["REMINDER_HOUR"]:
        return []
    today = local.date()
    lead_times = _lead_times()
    if not lead_times:
        return []
    meetings = db.session.execute(
        db.select(Meeting.id, Meeting.start_date).where(
            Meeting.status == "upcoming",
            Meeting.archived_at.is_(None),
            Meeting.start_date > today,
            Meeting.start_date <= today + timedelta(days=max(lead_times)),
        )
    ).all()
    due = [
        DueReminder(meeting_id, start, days)
        for meeting_id, start in meetings
        for days in lead_times
        if start - timedelta(days=days) <= today
    ]
    if not due:
        return []
    made = set(
        db.session.execute(db.select(Digest.reminder_key).where(Digest.reminder_key.in_([d.key for d in due])))
        .scalars()
        .all()
    )
    return [d for d in due if d.key not in made]


def send_due(now: datetime | None = None) -> dict[int, int]:
    """Make every due reminder, one committed transaction each; return the ones to ring with their deliveries."""
    now = now or utcnow()
    made = {}
    for due in due_reminders(now):
        created = create_reminder(due, now)
        if created is not None and created[1]:
            made[created[0]] = created[1]
    return made


def create_reminder(due: DueReminder, now: datetime) -> tuple[int, int] | None:
    """Insert the reminder with its deliveries and commit; its id and delivery count, or None when it is not made.

    None when another process made it first (the unique key) or the meeting changed meanwhile.
    """
    meeting = db.session.get(Meeting, due.meeting_id)
    if meeting is None or not _still_due(meeting, due, now):
        return None
    digest = Digest(
        kind=KIND,
        reminder_key=due.key,
        number=None,
        is_test=False,
        subject=reminder_subject(meeting.title, meeting.start_date, org_today(now)),
        status=DigestStatus.QUEUED,
        until=now,
        content={"meetings": [entry("meetings", meeting)]},
        topics=int(Topic.MEETINGS),
    )
    db.session.add(digest)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        return None
    deliveries = snapshot_deliveries(digest, Subscriber.reminder_days == due.days)
    if not deliveries:
        digest.status, digest.started_at, digest.sent_at = DigestStatus.SENT, now, now
    db.session.add(
        AuditEntry(
            actor="worker",
            action="reminder.create",
            target=f"digest:{digest.id}",
            detail={"meeting": meeting.slug, "start_date": due.start_date.isoformat(), "days": due.days,
                    "deliveries": deliveries},
        )
    )  # fmt: skip
    db.session.commit()
    return digest.id, deliveries


def _still_due(meeting: Meeting, due: DueReminder, now: datetime) -> bool:
    """True when the meeting is still upcoming on the date the reminder is about, and that date is still ahead."""
    return (
        meeting.status == "upcoming"
        and meeting.archived_at is None
        and meeting.start_date == due.start_date
        and due.start_date > org_today(now)
    )


def reminder_subject(title: str, start: date, today: date) -> str:
    """``Reminder: 59th SMEWG Meeting starts in 3 days (8 December 2026)``, cut to fit the column."""
    days = (start - today).days
    when = "tomorrow" if days == 1 else f"in {reminder_label(days)}"
    tail = f" starts {when} ({long_date(start)})"
    room = SUBJECT_SIZE - len("Reminder: ") - len(tail)
    shown = title if len(title) <= room else title[: room - 1].rstrip() + "…"
    return f"Reminder: {shown}{tail}"
