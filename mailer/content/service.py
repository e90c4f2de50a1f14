"""Content queries: what changed in a time window, as JSON-safe entries digests can snapshot."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from ..extensions import db
from ..models import Meeting, NewsItem, Project

#: What a slug looks like: lowercase letters, digits and single hyphens (at most 120 characters).
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def changed_content(since: datetime | None, until: datetime) -> dict[str, list[dict[str, Any]]]:
    """Items created or changed in (since, until], by topic name in the fixed order; empty topics left out."""
    found = {
        "meetings": [meeting_entry(m) for m in _changed(Meeting, since, until, Meeting.start_date, Meeting.id)],
        "projects": [project_entry(p) for p in _changed(Project, since, until, Project.title, Project.id)],
        "news": [news_entry(n) for n in _changed(NewsItem, since, until, NewsItem.published_on.desc(), NewsItem.id)],
    }
    return {topic: items for topic, items in found.items() if items}


def _changed(model: type, since: datetime | None, until: datetime, *order: Any) -> list[Any]:
    """Rows of ``model`` whose ``updated_at`` lies in (since, until], in ``order``."""
    query = db.select(model).where(model.updated_at <= until)
    if since is not None:
        query = query.where(model.updated_at > since)
    return list(db.session.execute(query.order_by(*order)).scalars())


def meeting_entry(meeting: Meeting) -> dict[str, Any]:
    """A meeting as a JSON-safe dict (dates as ISO strings)."""
    return {
        "slug": meeting.slug,
        "title": meeting.title,
        "kind": meeting.kind,
        "number": meeting.number,
        "start_date": meeting.start_date.isoformat(),
        "end_date": meeting.end_date.isoformat(),
        "city": meeting.city,
        "economy": meeting.economy,
        "status": meeting.status,
        "summary": meeting.summary,
        "link": meeting.link,
        "demo": meeting.demo,
    }


def project_entry(project: Project) -> dict[str, Any]:
    """A project as a JSON-safe dict."""
    return {
        "slug": project.slug,
        "title": project.title,
        "reference": project.reference,
        "status": project.status,
        "funding_source": project.funding_source,
        "year": project.year,
        "summary": project.summary,
        "link": project.link,
        "demo": project.demo,
    }


def news_entry(item: NewsItem) -> dict[str, Any]:
    """A news item as a JSON-safe dict."""
    return {
        "slug": item.slug,
        "title": item.title,
        "published_on": item.published_on.isoformat(),
        "body": item.body,
        "demo": item.demo,
    }


def find_meeting(slug: str) -> Meeting | None:
    """The meeting with ``slug``, or None (also for anything that is not a slug)."""
    if len(slug) > 120 or not SLUG.match(slug):
        return None
    return db.session.execute(db.select(Meeting).where(Meeting.slug == slug)).scalar_one_or_none()


#: Each section's item as a JSON-safe entry, by section name.
SECTION_ENTRIES = {"meetings": meeting_entry, "projects": project_entry, "news": news_entry}
