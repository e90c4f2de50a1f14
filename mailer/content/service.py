"""Content queries: what changed in a time window, as JSON-safe entries digests can snapshot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..extensions import db
from ..models import SLUG_LENGTH, Meeting, NewsItem, Project
from .schema import SLUG, entry


def changed_content(since: datetime | None, until: datetime) -> dict[str, list[dict[str, Any]]]:
    """Items created or changed in (since, until], by topic name in the fixed order; empty topics left out."""
    found = {
        "meetings": _changed(Meeting, since, until, Meeting.start_date, Meeting.id),
        "projects": _changed(Project, since, until, Project.title, Project.id),
        "news": _changed(NewsItem, since, until, NewsItem.published_on.desc(), NewsItem.id),
    }
    return {topic: [entry(topic, item) for item in items] for topic, items in found.items() if items}


def _changed(model: type, since: datetime | None, until: datetime, *order: Any) -> list[Any]:
    """Rows of ``model`` whose ``updated_at`` lies in (since, until], in ``order``."""
    query = db.select(model).where(model.updated_at <= until)
    if since is not None:
        query = query.where(model.updated_at > since)
    return list(db.session.execute(query.order_by(*order)).scalars())


def find_meeting(slug: str) -> Meeting | None:
    """The meeting with ``slug``, or None (also for anything that is not a slug)."""
    if len(slug) > SLUG_LENGTH or not SLUG.match(slug):
        return None
    return db.session.execute(db.select(Meeting).where(Meeting.slug == slug)).scalar_one_or_none()


def recently_changed(model: type, limit: int) -> list[Any]:
    """The items of one section, most recently changed first."""
    return list(db.session.execute(db.select(model).order_by(model.updated_at.desc()).limit(limit)).scalars())


def find_item(model: type, slug: str) -> Any | None:
    """The item of one section with this slug, or None."""
    return db.session.execute(db.select(model).where(model.slug == slug)).scalar_one_or_none()
