"""Content queries (what changed in a time window, as JSON-safe entries digests can snapshot; the live items
pages show) and the console's archive, unarchive and delete, each audited in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..extensions import db
from ..models import SLUG_LENGTH, AuditEntry, Meeting, NewsItem, Project, utcnow
from .schema import SECTIONS, SLUG, entry


def changed_content(since: datetime | None, until: datetime) -> dict[str, list[dict[str, Any]]]:
    """Items created or changed in (since, until], by topic name in the fixed order; empty topics left out."""
    found = {
        "meetings": _changed(Meeting, since, until, Meeting.start_date, Meeting.id),
        "projects": _changed(Project, since, until, Project.title, Project.id),
        "news": _changed(NewsItem, since, until, NewsItem.published_on.desc(), NewsItem.id),
    }
    return {topic: [entry(topic, item) for item in items] for topic, items in found.items() if items}


def _changed(model: type, since: datetime | None, until: datetime, *order: Any) -> list[Any]:
    """Live rows of ``model`` whose ``updated_at`` lies in (since, until], in ``order``."""
    query = db.select(model).where(model.updated_at <= until, model.archived_at.is_(None))
    if since is not None:
        query = query.where(model.updated_at > since)
    return list(db.session.execute(query.order_by(*order)).scalars())


def recently_changed(model: type, limit: int) -> list[Any]:
    """The items of one section, archived ones too, most recently changed first."""
    return list(db.session.execute(db.select(model).order_by(model.updated_at.desc()).limit(limit)).scalars())


def live_items(model: type, order: Any, limit: int) -> list[Any]:
    """At most ``limit`` items of one section that are not archived, in ``order``."""
    query = db.select(model).where(model.archived_at.is_(None)).order_by(order).limit(limit)
    return list(db.session.execute(query).scalars())


def calendar_meetings() -> list[Meeting]:
    """Every meeting that is not archived, earliest first: the events of the calendar feed."""
    query = db.select(Meeting).where(Meeting.archived_at.is_(None)).order_by(Meeting.start_date, Meeting.id)
    return list(db.session.execute(query).scalars())


def find_item(model: type, slug: str) -> Any | None:
    """The item of one section with this slug, archived or not; None (without a query) for anything not a slug."""
    if len(slug) > SLUG_LENGTH or not SLUG.match(slug):
        return None
    return db.session.execute(db.select(model).where(model.slug == slug)).scalar_one_or_none()


def archive_item(section: str, slug: str, *, actor: str) -> bool:
    """Take a live item off the public pages and out of new digests; False when it was not live."""
    return _set_archived(section, slug, utcnow(), actor=actor)


def unarchive_item(section: str, slug: str, *, actor: str) -> bool:
    """Publish an archived item again (its ``updated_at`` stays); False when it was not archived."""
    return _set_archived(section, slug, None, actor=actor)


def _set_archived(section: str, slug: str, when: datetime | None, *, actor: str) -> bool:
    """Move ``archived_at`` to ``when`` only if it is not there already (a conditional UPDATE), audited."""
    model = SECTIONS[section][0]
    was = model.archived_at.is_(None) if when is not None else model.archived_at.is_not(None)
    changed = db.session.execute(db.update(model).where(model.slug == slug, was).values(archived_at=when)).rowcount
    action = "content.archive" if when is not None else "content.unarchive"
    return _audited(changed, action, f"{section}:{slug}", actor, None)


def delete_item(section: str, slug: str, *, actor: str) -> bool:
    """Delete an item for good (sent digests keep their own copy); False when it is already gone.

    Nothing else references content rows, so nothing else changes; the audit entry keeps the item's
    fields, which a JSON import can bring back."""
    model = SECTIONS[section][0]
    item = find_item(model, slug)
    if item is None:
        return False
    detail = {"item": entry(section, item)}
    deleted = db.session.execute(db.delete(model).where(model.id == item.id)).rowcount
    return _audited(deleted, "content.delete", f"{section}:{slug}", actor, detail)


def _audited(rows: int, action: str, target: str, actor: str, detail: dict[str, Any] | None) -> bool:
    """Commit a change of ``rows`` rows with its audit entry, or roll back when nothing changed."""
    if not rows:
        db.session.rollback()
        return False
    db.session.add(AuditEntry(actor=actor, action=action, target=target, detail=detail))
    db.session.commit()
    return True
