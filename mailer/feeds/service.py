"""Feeds: add, list, remove, and fetch one into news items or meetings, each in one audited transaction.

A fetched entry becomes an item through the importer's one write path (``create_item`` and
``apply_changes``), checked by the importer's rules. What the feed gave last time is kept on
its FeedEntry: a field whose value still equals it was not touched by staff and follows the
feed; a field staff changed is theirs. An item staff deleted is never made again, an archived
one stays archived, and entries that left the feed leave their items alone.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app
from redis.exceptions import LockError, LockNotOwnedError
from sqlalchemy.exc import IntegrityError

from ..content import importer
from ..content.display import org_today
from ..content.importer import SURROGATE
from ..content.schema import SECTIONS, entry, plain, slug_from_title
from ..extensions import db
from ..models import FEED_KINDS, MEETING_KINDS, AuditEntry, Feed, FeedEntry, utcnow
from ..redis_client import get_redis, redis_key
from ..text import CONTROL
from .fetch import FetchError, Limits, fetch
from .parse import Parsed, ParseError, parse_calendar, parse_news

MAX_URL = 2000
#: The fields each kind of feed gives; the others (a meeting's number, economy…) are left to staff.
FEED_FIELDS = {
    "news": ("title", "published_on", "body", "link"),
    "meetings": ("title", "kind", "start_date", "end_date", "city", "status", "summary", "link"),
}
#: A failing feed waits its interval times 2**failures, but never longer than this (or its interval).
MAX_BACKOFF = timedelta(days=1)
ACTOR = "feeds"
#: Tries at storing one fetch when a slug it chose is taken by another writer meanwhile.
STORE_ATTEMPTS = 3
#: The task that fetches one feed (mailer/feeds/tasks.py), sent by name so this module never imports its tasks.
FETCH_TASK = "mailer.feeds.fetch"


class FeedError(ValueError):
    """Input that cannot make or name a feed; ``field`` is the form field it is about."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class FetchReport:
    """What one fetch did: items created, updated and unchanged, entries skipped (why), or why it failed."""

    feed_id: int
    url: str
    created: dict[str, list[str]] = field(default_factory=dict)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    not_modified: bool = False
    error: str | None = None

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` entries skipped for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    @property
    def changed(self) -> bool:
        """True when the fetch created or updated an item."""
        return any(self.created.values()) or any(self.updated.values())

    def summary(self) -> str:
        """One line for people: ``2 created, 1 updated, 4 unchanged, 1 skipped (recurring)`` or the failure."""
        if self.error:
            return f"failed: {self.error}"
        if self.not_modified:
            return "not modified since the last fetch"
        created = sum(len(v) for v in self.created.values())
        updated = sum(len(v) for v in self.updated.values())
        line = f"{created} created, {updated} updated, {self.unchanged} unchanged, {sum(self.skipped.values())} skipped"
        reasons = ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())
        return f"{line} ({reasons})" if reasons else line


@dataclass(frozen=True)
class FeedListing:
    """A feed with how many entries it has brought and how many of their items still exist."""

    feed: Feed
    entries: int
    items: int


def add_feed(url: str, kind: str, meeting_kind: str | None, actor: str, now: datetime | None = None) -> Feed:
    """Add a feed, due for its first fetch at once; FeedError (nothing added) for a bad or known URL or kind."""
    url = _checked_url(url)
    if kind not in FEED_KINDS:
        raise FeedError(f"the kind must be one of {', '.join(FEED_KINDS)}", "kind")
    meeting_kind = meeting_kind or None
    if meeting_kind is not None and (kind != "meetings" or meeting_kind not in MEETING_KINDS):
        raise FeedError(f"a meetings feed's kind of meeting must be one of {', '.join(MEETING_KINDS)}", "meeting_kind")
    # One addition at a time across every web and CLI process, so two admins adding one URL make one feed.
    try:
        with get_redis().lock(redis_key("feeds:adding"), timeout=30, blocking_timeout=10):
            return _add_unlocked(url, kind, meeting_kind, actor, now or utcnow())
    except LockError:
        raise FeedError("another feed is being added right now; try again in a moment") from None


def _add_unlocked(url: str, kind: str, meeting_kind: str | None, actor: str, now: datetime) -> Feed:
    """Add the checked feed unless its URL is known (the adding lock held)."""
    if any(_same_url(url, known) for known in db.session.execute(db.select(Feed.url)).scalars()):
        raise FeedError("this feed is already there")
    feed = Feed(url=url, kind=kind, meeting_kind=meeting_kind, created_by=actor, next_fetch_at=now)
    db.session.add(feed)
    db.session.flush()
    detail = {"url": url, "kind": kind, "meeting_kind": meeting_kind}
    db.session.add(AuditEntry(actor=actor, action="feeds.add", target=f"feed:{feed.id}", detail=detail))
    db.session.commit()
    return feed


def _checked_url(url: str) -> str:
    """``url`` stripped, when it is an http(s) URL with a host that fits; FeedError otherwise."""
    url = url.strip() if isinstance(url, str) else ""
    if not url:
        raise FeedError("enter the feed's address")
    if len(url) > MAX_URL:
        raise FeedError(f"the address is longer than {MAX_URL} characters")
    if CONTROL.search(url) or " " in url:
        raise FeedError("the address must be one line without spaces")
    if not url.isascii() and SURROGATE.search(url):
        raise FeedError("the address is not valid text")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise FeedError("the address is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise FeedError("the address must be an http:// or https:// URL")
    return url


def _same_url(one: str, other: str) -> bool:
    """True when two URLs differ at most in the case of their scheme and host."""
    a, b = urlsplit(one), urlsplit(other)
    return (a.scheme.lower(), a.netloc.lower(), a.path, a.query) == (
        b.scheme.lower(),
        b.netloc.lower(),
        b.path,
        b.query,
    )


def failing_feeds() -> list[Feed]:
    """The feeds whose last fetch failed, longest failing first: the console's dashboard names them."""
    query = db.select(Feed).where(Feed.last_error.is_not(None)).order_by(Feed.failures.desc(), Feed.id)
    return list(db.session.execute(query).scalars())


def find_feed(feed_id: int) -> Feed | None:
    """The feed with this id, or None (also for ids no row can have)."""
    return db.session.get(Feed, feed_id) if 0 < feed_id < 2**31 else None


def remove_feed(feed_id: int, actor: str) -> Feed | None:
    """Remove a feed and its entries; its items stay, with their source. None when there is no such feed."""
    feed = find_feed(feed_id)
    if feed is None:
        return None
    entries = db.session.execute(db.delete(FeedEntry).where(FeedEntry.feed_id == feed.id)).rowcount
    if not db.session.execute(db.delete(Feed).where(Feed.id == feed.id)).rowcount:
        db.session.rollback()
        return None  # removed meanwhile by another request
    detail = {"url": feed.url, "kind": feed.kind, "entries": entries}
    db.session.add(AuditEntry(actor=actor, action="feeds.remove", target=f"feed:{feed_id}", detail=detail))
    db.session.commit()
    return feed


def list_feeds() -> list[FeedListing]:
    """Every feed, oldest first, with its counts of entries and of items still there."""
    feeds = db.session.execute(db.select(Feed).order_by(Feed.id)).scalars().all()
    counted = db.select(FeedEntry.feed_id, db.func.count()).group_by(FeedEntry.feed_id)
    entries = dict(db.session.execute(counted).tuples().all())
    listing = []
    for feed in feeds:
        model = SECTIONS[feed.kind][0]
        items = db.session.execute(db.select(db.func.count()).where(model.source == feed.url)).scalar_one()
        listing.append(FeedListing(feed, entries.get(feed.id, 0), items))
    return listing


def item_source(section: str, slug: str) -> str | None:
    """The feed URL an item came from, or None (typed in, imported from a file, or no such item)."""
    model = SECTIONS[section][0] if section in ("meetings", "news") else None
    if model is None or not isinstance(slug, str):
        return None
    return db.session.execute(db.select(model.source).where(model.slug == slug)).scalar_one_or_none()


def queue_fetch(feed_id: int, actor: str) -> None:
    """Ask a worker to fetch one feed now."""
    current_app.extensions["celery"].send_task(FETCH_TASK, args=[feed_id, actor])


def fetch_due(now: datetime | None = None) -> list[FetchReport]:
    """Fetch every feed whose time has come, each claimed first so that no two workers fetch it at once."""
    now = now or utcnow()
    due = db.select(Feed.id).where(Feed.next_fetch_at <= now).order_by(Feed.next_fetch_at)
    reports = []
    for feed_id in db.session.execute(due).scalars().all():
        if claim(feed_id, now):
            reports.append(fetch_feed(feed_id, now))
    return reports


def claim(feed_id: int, now: datetime) -> bool:
    """Move a due feed's next fetch one interval on (a conditional UPDATE); False when another worker did first.

    Should the fetch die on the way, the feed is simply due again an interval later."""
    lease = now + timedelta(seconds=current_app.config["FEED_FETCH_INTERVAL"])
    claimed = db.session.execute(
        db.update(Feed).where(Feed.id == feed_id, Feed.next_fetch_at <= now).values(next_fetch_at=lease)
    ).rowcount
    db.session.commit()
    return bool(claimed)


def fetch_feed(feed_id: int, now: datetime | None = None, actor: str = ACTOR) -> FetchReport:
    """Fetch one feed now and import what changed in one transaction; the report says what happened.

    A failure is recorded on the feed (in words, counted, next fetch backed off) and nothing is imported.
    A feed another worker is fetching right now is left to it (the report's error says so)."""
    now = now or utcnow()
    feed = find_feed(feed_id)
    if feed is None:
        raise FeedError(f"there is no feed {feed_id}", "id")
    report = FetchReport(feed.id, feed.url)
    lock = get_redis().lock(redis_key(f"feeds:fetching:{feed.id}"), timeout=_lock_seconds(), blocking=False)
    if not lock.acquire():
        report.error = "another fetch of this feed is under way"
        return report
    try:
        _fetch_locked(feed, report, now, actor)
    finally:
        with contextlib.suppress(LockNotOwnedError):  # it expired first: another fetch was free to start
            lock.release()
    return report


def _lock_seconds() -> int:
    """How long a fetch may hold its feed: the fetch's deadline, and time to store what it brought."""
    return int(current_app.config["FEED_TIMEOUT"]) + 120


def _fetch_locked(feed: Feed, report: FetchReport, now: datetime, actor: str) -> None:
    """Fetch, parse and import ``feed`` (its lock held), recording the outcome on the feed."""
    url, kind, meeting_kind = feed.url, feed.kind, feed.meeting_kind
    etag, last_modified = feed.etag, feed.last_modified
    db.session.rollback()  # no transaction stays open while the network is waited on
    config = current_app.config
    zone = ZoneInfo(config["ORG_TIMEZONE"])
    limits = Limits(
        float(config["FEED_TIMEOUT"]), int(config["FEED_MAX_BYTES"]), _user_agent(), bool(config["FEED_ALLOW_PRIVATE"])
    )
    try:
        fetched = fetch(url, etag, last_modified, limits)
        parsed = None
        if fetched.body is not None:
            today = now.astimezone(zone).date()
            if kind == "news":
                parsed = parse_news(fetched.body, url, zone)  # not the redirect's: relative guids stay put
            else:
                parsed = parse_calendar(fetched.body, zone, today, meeting_kind or "other")
    except (FetchError, ParseError) as exc:
        report.error = str(exc)
        _record_failure(feed.id, report.error, now)
        return
    validators = (fetched.etag or etag, fetched.last_modified or last_modified)
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            _store(feed.id, parsed, validators, report, now, actor)
            return
        except IntegrityError:
            # A slug chosen here was taken meanwhile (another feed, the console): choose again.
            db.session.rollback()
            if attempt == STORE_ATTEMPTS:
                raise


def _store(
    feed_id: int, parsed: Parsed | None, validators: tuple[str | None, str | None], report: FetchReport,
    now: datetime, actor: str,
) -> None:  # fmt: skip
    """Import what was fetched (None: not modified) and record the success, in one transaction."""
    report.created, report.updated, report.unchanged, report.skipped = {}, {}, 0, {}
    feed = db.session.get(Feed, feed_id)
    if feed is None:
        report.error = "the feed was removed during the fetch"
        return
    if parsed is None:
        report.not_modified = True
    else:
        _import(feed, parsed, report, now)
        feed.title = parsed.title or feed.title
    _record_success(feed, *validators, now)
    if report.changed:
        detail = {"created": report.created, "updated": report.updated, "skipped": report.skipped}
        db.session.add(AuditEntry(actor=actor, action="feeds.fetch", target=f"feed:{feed.id}", detail=detail))
    db.session.commit()


def _user_agent() -> str:
    """``mailer (+https://news.example.org)``: who is asking, and where to find them."""
    return f"mailer feed fetcher (+{current_app.config['BASE_URL']})"


def _record_success(feed: Feed, etag: str | None, last_modified: str | None, now: datetime) -> None:
    """The feed answered: keep its validators, clear its failure, and plan the next fetch an interval on."""
    feed.etag, feed.last_modified = etag, last_modified
    feed.last_checked_at = feed.last_success_at = now
    feed.last_error, feed.failures = None, 0
    feed.next_fetch_at = now + timedelta(seconds=current_app.config["FEED_FETCH_INTERVAL"])


def _record_failure(feed_id: int, error: str, now: datetime) -> None:
    """Keep the failure in words, count it, and wait longer before the next try (doubling, capped)."""
    feed = db.session.get(Feed, feed_id)
    if feed is None:
        return
    feed.failures = (feed.failures or 0) + 1
    feed.last_error = error[:1000]
    feed.last_checked_at = now
    interval = timedelta(seconds=current_app.config["FEED_FETCH_INTERVAL"])
    feed.next_fetch_at = now + min(interval * 2 ** min(feed.failures, 20), max(MAX_BACKOFF, interval))
    db.session.commit()


def _import(feed: Feed, parsed: Parsed, report: FetchReport, now: datetime) -> None:
    """Create or update the item of each entry (not committed); the report counts what happened."""
    for reason, count in parsed.left_out.items():
        report.skip(reason, count)
    known = {e.key: e for e in db.session.execute(db.select(FeedEntry).where(FeedEntry.feed_id == feed.id)).scalars()}
    seen: set[str] = set()
    for item in parsed.entries:
        key = hashlib.sha256(item.guid.encode()).hexdigest()
        if key in seen:
            report.skip("repeated id")
            continue
        seen.add(key)
        found = known.get(key)
        if found is None:
            _create(feed, key, item.guid, item.values, report, now)
        else:
            _update(feed, found, item.values, report, now)


def _create(feed: Feed, key: str, guid: str, given: dict[str, Any], report: FetchReport, now: datetime) -> None:
    """Make a new item of an entry seen for the first time, and its FeedEntry."""
    section = feed.kind
    model, fields = SECTIONS[section]
    if section == "news" and given["published_on"] is None:
        given = {**given, "published_on": org_today(now).isoformat()}
    slug = importer._free_slug(model, slug_from_title(given["title"]) or importer.NOUNS[section])
    values, problems = importer._validate_item({**given, "slug": slug}, fields, (section, 0))
    if problems:
        report.skip("invalid")
        return
    importer.create_item(model, {**values, "source": feed.url})
    fields_given = {name: plain(values[name]) for name in FEED_FIELDS[section]}
    db.session.add(FeedEntry(feed_id=feed.id, key=key, guid=guid, section=section, slug=slug, fields=fields_given,
                             first_seen_at=now, last_seen_at=now))  # fmt: skip
    db.session.flush()  # the next entry's free slug must see this one
    report.created.setdefault(section, []).append(slug)


def _update(feed: Feed, known: FeedEntry, given: dict[str, Any], report: FetchReport, now: datetime) -> None:
    """Bring an entry's item up to the feed, field by field, leaving alone the fields staff changed."""
    section = known.section
    model, fields = SECTIONS[section]
    known.last_seen_at = now
    if section == "news" and given["published_on"] is None:
        given = {**given, "published_on": known.fields.get("published_on") or org_today(now).isoformat()}
    row = db.session.execute(db.select(model).where(model.slug == known.slug)).scalar_one_or_none()
    if row is None or row.source != feed.url:
        report.unchanged += 1  # staff deleted it (a later item with its slug is not ours): never made again
        return
    current = entry(section, row)
    feed_values, problems = importer._validate_item({**current, **given}, fields, (section, 0))
    fresh = {name: plain(feed_values.get(name)) for name in FEED_FIELDS[section]}
    ours = {name for name in fresh if current[name] == known.fields.get(name) and fresh[name] != current[name]}
    values, clash = importer._validate_item({**current, **{n: fresh[n] for n in ours}}, fields, (section, 0))
    if problems or clash:
        report.skip("invalid")  # what the feed gave last time stays, so the next fetch tries again
        return
    known.fields = fresh
    if ours and importer.apply_changes(row, section, {name: values[name] for name in ours}):
        report.updated.setdefault(section, []).append(row.slug)
    else:
        report.unchanged += 1
