"""The audit log, for reading: entries newest first, filtered by actor, action and time, paged by id.

Entries page by keyset on their id (``occurred_at`` is set when the row is inserted, so id order is
time order, and the primary key serves it): a late page costs what the first does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from ..extensions import db
from ..models import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show: any of them may be None (no condition). ``until`` is exclusive."""

    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditPage(NamedTuple):
    """One page of entries, newest first, and whether there are older ones."""

    rows: list[AuditEntry]
    more: bool


def audit_entries(wanted: AuditFilter, before: int | None, limit: int) -> AuditPage:
    """Up to ``limit`` entries matching ``wanted`` with ids below ``before`` (all when None), newest first."""
    query = db.select(AuditEntry).order_by(AuditEntry.id.desc())
    if wanted.actor:
        query = query.where(AuditEntry.actor.icontains(wanted.actor, autoescape=True))
    if wanted.action:
        query = query.where(AuditEntry.action == wanted.action)
    if wanted.since is not None:
        query = query.where(AuditEntry.occurred_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AuditEntry.occurred_at < wanted.until)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    rows = list(db.session.execute(query.limit(limit + 1)).scalars())
    return AuditPage(rows[:limit], len(rows) > limit)


def audit_actions() -> list[str]:
    """Every action that has an entry, alphabetically (what the action filter offers)."""
    return list(db.session.execute(db.select(AuditEntry.action).distinct().order_by(AuditEntry.action)).scalars())


def day_start(day: date, zone: str) -> datetime:
    """The UTC moment at which ``day`` begins in time zone ``zone``; OverflowError at the calendar's ends."""
    return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)


def day_end(day: date, zone: str) -> datetime:
    """The UTC moment at which ``day`` ends (the next day begins) in ``zone``; OverflowError at the calendar's ends."""
    return day_start(day + timedelta(days=1), zone)
