"""What the next digest holds, the subject it carries, and how one topic variant renders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from flask import current_app

from ..content.calendar import calendar_url, feed_url
from ..content.display import date_range, item_url, long_date, org_today, paragraphs, place
from ..content.service import changed_content
from ..extensions import db
from ..mail import RenderedEmail, personal_placeholder, render_email
from ..models import ALL_TOPICS, TOPIC_LABELS, Digest, DigestStatus, Topic, utcnow
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
    """The next digest's content for ``topics``: what changed since the watermark, up to ``until``."""
    since, until = watermark(), until or utcnow()
    content = changed_content(since, until)
    wanted = Topic(topics).to_names()
    return NextDigest(since=since, until=until, content={t: items for t, items in content.items() if t in wanted})


def subject_for(content: dict[str, list[Any]], topics: int, when: datetime) -> str:
    """A subject like ``SMEWG News — November 2026: 2 meetings, 1 project``."""
    counts = []
    for topic in Topic(topics).to_names():
        count = len(content.get(topic, []))
        if count:
            counts.append(f"{count} {NOUNS[topic][count != 1]}")
    return f"{current_app.config['ORG_NAME']} — {when.strftime('%B %Y')}: {', '.join(counts)}"


def archive_url(digest: Digest) -> str:
    """The digest's page in the public archive; a test digest's link carries a viewing token."""
    url = archive_page_url(current_app.config["BASE_URL"], digest.id)
    return url + "?t=" + make_token("archive", digest.id) if digest.is_test else url


def sections(content: dict[str, list[dict[str, Any]]], topics: int, today: date | None = None) -> list[dict[str, Any]]:
    """The topics of ``topics`` that have items, in the fixed order, ready for a template.

    Each item links to its public page; meetings come upcoming first (soonest first), then past
    ones (most recent first), and only meetings not over by ``today`` (default: today) get a calendar link."""
    base_url = current_app.config["BASE_URL"]
    today = today or org_today(utcnow())
    found = []
    for topic in Topic(topics).to_names():
        items = [{**item, "page_url": item_url(topic, item["slug"], base_url)} for item in content.get(topic, [])]
        if topic == "meetings":
            items = meetings_in_order(items, today)
            for item in items:
                item["when"] = date_range(date.fromisoformat(item["start_date"]), date.fromisoformat(item["end_date"]))
                item["where"] = place(item["city"], item["economy"])
                item["calendar_url"] = None if item["past"] else calendar_url(item["slug"], base_url)
        if topic == "news":
            for item in items:
                item["date"] = long_date(date.fromisoformat(item["published_on"]))
                item["paragraphs"] = paragraphs(item["body"])
        if items:
            found.append({"name": topic, "heading": TOPIC_LABELS[topic], "items": items})
    return found


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
