"""The cache every public page is served from: rendered once per version of the public content.

Home, item pages, archive, feed and a meeting's .ics change only when content is edited, archived or
deleted, or a digest is sent. Each web process keeps the rendered bytes per version and answers from
them (with an ETag); one small query tells the version, so several web processes never serve a stale
page for longer than VERSION_TTL.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Response, current_app, request, session
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Digest, Meeting, NewsItem, Project

#: How long a process trusts the public version it last read. Pages are cached per version in each
#: web process, so an edit or a sent digest committed by another process shows here at most this many
#: seconds later (a commit through this process's session shows at once); in exchange a busy process asks
#: the database one small query per second, not one or more per request.
VERSION_TTL = 1.0
#: Browsers and proxies may keep a public page but must ask again (a 304 when the ETag still matches).
PUBLIC_CACHE_CONTROL = "no-cache"


@dataclass
class _CachedPage:
    """A rendered public page and its ETag."""

    body: bytes
    mimetype: str
    etag: str


@dataclass
class PublicPages:
    """One app's rendered public pages, all dropped together when the public version moves."""

    #: Commits made through any session of this process (the send engine's autocommit statements are not).
    local_commits = 0

    version: tuple[object, ...] | None = None
    checked_at: float = float("-inf")
    commits_seen: int = -1
    pages: dict[str, _CachedPage] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def current(self) -> dict[str, _CachedPage]:
        """The pages of the current version, read after a local commit and otherwise once per VERSION_TTL."""
        now, commits = time.monotonic(), PublicPages.local_commits
        if now - self.checked_at >= VERSION_TTL or commits != self.commits_seen:
            version = public_version()
            with self.lock:
                if version != self.version:
                    self.version, self.pages = version, {}
                self.checked_at, self.commits_seen = now, commits
        return self.pages


@event.listens_for(Session, "after_commit")
def _count_commit(session: Session) -> None:
    """Note a commit, so this process's own edits show on its next public page without waiting."""
    PublicPages.local_commits += 1


def public_version() -> tuple[object, ...]:
    """What the public pages are made of, in one query: for each kind of content, its count (a delete lowers
    it), its latest ``updated_at`` (every edit moves it), how many are archived (unarchiving lowers it) and the
    latest ``archived_at`` (every archive moves it); the count and latest of the sent digests."""
    sent = db.and_(Digest.status == "sent", Digest.is_test.is_(False))
    parts = [db.select(db.func.count(Digest.id)).where(sent), db.select(db.func.max(Digest.sent_at)).where(sent)]
    for model in (Meeting, Project, NewsItem):
        parts += [db.select(db.func.count(model.id)), db.select(db.func.max(model.updated_at))]
        parts += [db.select(db.func.count(model.archived_at)), db.select(db.func.max(model.archived_at))]
    query = db.select(*(part.scalar_subquery() for part in parts))
    return tuple(db.session.execute(query).one())


def public_page(key: str, render: Callable[[], str | bytes], mimetype: str = "text/html") -> Response:
    """The page ``render`` makes, rendered once per public version in this process; 304 if the client has it."""
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies and "_flashes" in session:
        # A flash message is for this visitor alone: show (and consume) it on a fresh page, cache nothing.
        # Without a session cookie there is none, and leaving the session alone spares saving it.
        return Response(render(), mimetype=mimetype)
    pages = current_app.extensions.setdefault("public_pages", PublicPages()).current()
    page = pages.get(key)
    if page is None:
        body = render()
        body = body.encode() if isinstance(body, str) else body
        page = pages[key] = _CachedPage(body, mimetype, hashlib.blake2b(body, digest_size=16).hexdigest())
    response = Response(page.body, mimetype=page.mimetype)
    response.set_etag(page.etag)
    response.headers["Cache-Control"] = PUBLIC_CACHE_CONTROL
    response.headers["Vary"] = "Cookie"  # a session cookie may carry a flash message, shown on a fresh page
    return response.make_conditional(request) if request.if_none_match else response
