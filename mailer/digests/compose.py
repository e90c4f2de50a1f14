"""What the next digest holds, the subject it carries, and how one topic variant renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Integer

from ..content.calendar import calendar_url, feed_url
from ..content.display import NO_PLACE, date_range, item_url, long_date, org_today, paragraphs, place
from ..content.service import changed_content
from ..extensions import db
from ..mail import RenderedEmail, personal_placeholder, render_email
from ..models import ALL_TOPICS, TOPIC_LABELS, Digest, DigestStatus, Meeting, Topic, utcnow
from ..tokens import make_token
from .links import archive_page_url

#: Digests that claim their content: the next one starts where the latest of these ends, so a
#: second "send" while one is still going out holds nothing instead of the same items again.
#: A paused digest keeps its claim (it may resume); cancelling one gives its content back.
CLAIMING_STATUSES = (
    DigestStatus.SCHEDULED,
    DigestStatus.PREPARING,
    DigestStatus.QUEUED,
    DigestStatus.SENDING,
    DigestStatus.PAUSED,
    DigestStatus.SENT,
)
NOUNS = {"meetings": ("meeting", "meetings"), "projects": ("project", "projects"), "news": ("news item", "news items")}

#: What readers rely on about a meeting: when one of these differs from what the last digest carrying the
#: meeting said, the next digest announces the change (old → new) in a section of its own.
ANNOUNCED_FIELDS = ("start_date", "end_date", "city", "economy", "status")
#: Digests whose content is read at a time while looking for what readers last saw of some meetings.
SNAPSHOT_BATCH = 20
CHANGED_HEADING = "Changed since our last digest"


@dataclass(frozen=True)
class NextDigest:
    """The content a digest composed now would carry: items changed in (since, until]."""

    since: datetime | None
    until: datetime
    content: dict[str, list[dict[str, Any]]]

    @property
    def topics(self) -> int:
        """The mask of topics that have something new."""
        return int(Topic.from_names(list(self.content)))

    @property
    def is_empty(self) -> bool:
        """True when nothing changed in the window."""
        return not self.content


def watermark() -> datetime | None:
    """The ``until`` of the latest non-test digest that went or is going out, or None (reminders claim nothing)."""
    return db.session.execute(
        db.select(db.func.max(Digest.until)).where(
            Digest.is_test.is_(False), Digest.kind == "digest", Digest.status.in_(CLAIMING_STATUSES)
        )
    ).scalar()


def compose_next(topics: int = ALL_TOPICS, until: datetime | None = None) -> NextDigest:
    """The next digest's content for ``topics``: what changed since the watermark, up to ``until``.

    Meetings whose dates, place or status changed since a digest carried them say what readers saw then
    (``was``), so the snapshot a digest takes of this content announces each change once."""
    since, until = watermark(), until or utcnow()
    wanted = Topic(topics).to_names()
    content = {t: items for t, items in changed_content(since, until).items() if t in wanted}
    if "meetings" in content:
        mark_changes(content["meetings"])
    return NextDigest(since=since, until=until, content=content)


def mark_changes(meetings: list[dict[str, Any]]) -> None:
    """Give each meeting entry whose dates, place or status differ from what readers last saw a ``was``: the old values.

    A title that changed along with them is in ``was`` too (a title change alone is no news: the meeting stays
    an ordinary item); a meeting that no digest carried yet is new, never changed."""
    seen = last_seen({meeting["slug"] for meeting in meetings})
    for meeting in meetings:
        before = seen.get(meeting["slug"])
        if before is None:
            continue
        was = {name: before.get(name) for name in ANNOUNCED_FIELDS if before.get(name) != meeting[name]}
        if was:
            if before.get("title") != meeting["title"]:
                was["title"] = before.get("title")
            meeting["was"] = was


def last_seen(slugs: set[str]) -> dict[str, dict[str, Any]]:
    """Each meeting's entry in the latest digest (sent or going out, not a test) that carried it; new ones are absent.

    Digests are read newest first, SNAPSHOT_BATCH at a time, and reading stops once every meeting is found or
    the digests left are older than the meetings still sought (a digest cannot carry a meeting created after it),
    so a digest of new meetings reads no snapshot at all."""
    created = dict(db.session.execute(db.select(Meeting.slug, Meeting.created_at).where(Meeting.slug.in_(slugs))).all())
    if not created:
        return {}
    candidates = db.session.execute(
        db.select(Digest.id, Digest.until)
        .where(*_carrying_meetings(), Digest.until >= min(created.values()))
        .order_by(Digest.until.desc(), Digest.id.desc())
    ).all()
    found: dict[str, dict[str, Any]] = {}
    sought = set(created)
    for start in range(0, len(candidates), SNAPSHOT_BATCH):
        batch = candidates[start : start + SNAPSHOT_BATCH]
        sought = {slug for slug in sought if created[slug] <= batch[0].until}
        if not sought:
            break
        query = db.select(Digest.id, Digest.content).where(Digest.id.in_([digest.id for digest in batch]))
        contents = dict(db.session.execute(query).all())
        for digest in batch:
            for item in contents[digest.id].get("meetings", []):
                if item["slug"] in sought and created[item["slug"]] <= digest.until:
                    found[item["slug"]] = item
                    sought.discard(item["slug"])
    return found


def _carrying_meetings() -> tuple[Any, ...]:
    """Conditions for digests whose meetings readers have seen, or will: real digests that went or are going out."""
    return (
        Digest.is_test.is_(False),
        Digest.kind == "digest",
        Digest.status.in_(CLAIMING_STATUSES),
        Digest.topics.op("&", return_type=Integer)(int(Topic.MEETINGS)) != 0,
    )


def subject_for(content: dict[str, list[Any]], topics: int, when: datetime) -> str:
    """A subject like ``SMEWG News — November 2026: 3 meetings (1 changed), 1 project``."""
    counts = [_count(topic, content[topic]) for topic in Topic(topics).to_names() if content.get(topic)]
    return f"{current_app.config['ORG_NAME']} — {when.strftime('%B %Y')}: {', '.join(counts)}"


def _count(topic: str, items: list[dict[str, Any]]) -> str:
    """``2 news items``; meetings add what changed: ``3 meetings (1 cancelled, 1 changed)``, ``1 meeting changed``."""
    count = f"{len(items)} {NOUNS[topic][len(items) != 1]}"
    if topic != "meetings":
        return count
    cancelled = sum(1 for item in items if is_cancellation(item))
    changed = sum(1 for item in items if item.get("was")) - cancelled
    if cancelled + changed == len(items) and not (cancelled and changed):
        return f"{count} {'cancelled' if cancelled else 'changed'}"
    notes = [f"{number} {word}" for number, word in ((cancelled, "cancelled"), (changed, "changed")) if number]
    return f"{count} ({', '.join(notes)})" if notes else count


def is_cancellation(item: dict[str, Any]) -> bool:
    """True for a meeting entry that announces the meeting is now cancelled."""
    return "status" in (item.get("was") or {}) and item["status"] == "cancelled"


def archive_url(digest: Digest) -> str:
    """The digest's page in the public archive; a test digest's link carries a viewing token."""
    url = archive_page_url(current_app.config["BASE_URL"], digest.id)
    return url + "?t=" + make_token("archive", digest.id) if digest.is_test else url


def sections(content: dict[str, list[dict[str, Any]]], topics: int, today: date | None = None) -> list[dict[str, Any]]:
    """The topics of ``topics`` that have items, in the fixed order, ready for a template.

    Each item links to its public page; meetings come upcoming first (soonest first), then past
    ones (most recent first), and only meetings not over by ``today`` (default: today) get a calendar link.
    Meetings that changed since readers last saw them open the list in a section of their own, ``changed``,
    instead of being among the meetings."""
    base_url = current_app.config["BASE_URL"]
    today = today or org_today(utcnow())
    found = []
    for topic in Topic(topics).to_names():
        items = [{**item, "page_url": item_url(topic, item["slug"], base_url)} for item in content.get(topic, [])]
        if topic == "meetings":
            items = meetings_in_order(items, today)
            for item in items:
                _describe_meeting(item, base_url)
            changed = [item for item in items if item["was"]]
            if changed:
                found.append({"name": "changed", "heading": CHANGED_HEADING, "items": changed})
            items = [item for item in items if not item["was"]]
        if topic == "news":
            for item in items:
                item["date"] = long_date(date.fromisoformat(item["published_on"]))
                item["paragraphs"] = paragraphs(item["body"])
                item["link"] = item.get("link")  # digests snapshotted before news had links
        if items:
            found.append({"name": topic, "heading": TOPIC_LABELS[topic], "items": items})
    return found


def _describe_meeting(item: dict[str, Any], base_url: str) -> None:
    """Add to a meeting entry its dates and place in words, its calendar link and, if it changed, what changed."""
    item["when"] = _when(item)
    item["where"] = place(item["city"], item["economy"])
    item["calendar_url"] = None if item["past"] else calendar_url(item["slug"], base_url)
    item["was"] = item.get("was") or {}
    if item["was"]:
        before = {**item, **item["was"]}
        item["cancelled"] = is_cancellation(item)
        item["was_when"], item["was_where"] = _when(before), place(before["city"], before["economy"])
        item["changes"] = _changes(before, item)


def _when(item: dict[str, Any]) -> str:
    """A meeting entry's dates in words: ``8–9 December 2026``."""
    return date_range(date.fromisoformat(item["start_date"]), date.fromisoformat(item["end_date"]))


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, str]]:
    """What changed between two versions of a meeting entry, each as a label with the old and new value in words."""
    pairs = [
        ("Title", before["title"], after["title"]),
        ("Dates", _when(before), _when(after)),
        (
            "Place",
            place(before["city"], before["economy"]) or NO_PLACE,
            place(after["city"], after["economy"]) or NO_PLACE,
        ),
        ("Status", before["status"], after["status"]),
    ]
    return [{"label": label, "old": old, "new": new} for label, old, new in pairs if old != new]


def meetings_in_order(items: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """Meeting entries marked ``past`` (ended before ``today``): upcoming soonest first, then past latest first."""
    for item in items:
        item["past"] = date.fromisoformat(item["end_date"]) < today
    upcoming = sorted((i for i in items if not i["past"]), key=lambda i: (i["start_date"], i["slug"]))
    past = sorted((i for i in items if i["past"]), key=lambda i: (i["start_date"], i["slug"]), reverse=True)
    return upcoming + past


def render_variant(digest: Digest, topics: int) -> tuple[str, RenderedEmail]:
    """The subject and rendered parts for subscribers of ``topics`` (personal links still placeholders)."""
    return render_content(digest.content, topics & digest.topics, digest.until, archive_url(digest), digest.is_test)


#: What a preview shows where each reader's own links will be.
PREVIEW_LINKS = {"preferences_url": "#your-preferences-link", "unsubscribe_url": "#your-unsubscribe-link"}


def preview(topics: int = ALL_TOPICS) -> tuple[str, RenderedEmail] | None:
    """The next digest as readers of ``topics`` would get it (links made visible), or None if empty."""
    next_digest = compose_next(topics)
    if next_digest.is_empty:
        return None
    subject, rendered = render_content(next_digest.content, topics, next_digest.until, "#link-to-this-digest-online")
    text, html = rendered.text, rendered.html
    for name, value in PREVIEW_LINKS.items():
        text, html = text.replace(personal_placeholder(name), value), html.replace(personal_placeholder(name), value)
    return subject, RenderedEmail(text=text, html=html)


def render_content(
    content: dict[str, list[dict[str, Any]]], topics: int, when: datetime, archive_link: str, test: bool = False
) -> tuple[str, RenderedEmail]:
    """Render the digest email for one topic variant of ``content``; return its subject and parts."""
    subject = subject_for(content, topics, when)
    if test:
        subject = f"[TEST] {subject}"
    rendered = render_email(
        "digest",
        org_name=current_app.config["ORG_NAME"],
        subject=subject,
        sections=sections(content, topics, org_today(when)),
        archive_url=archive_link,
        calendar_feed_url=feed_url(current_app.config["BASE_URL"]),
    )
    return subject, rendered
