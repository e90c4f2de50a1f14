"""How items read to people, in digests and on their public pages: dates, places, paragraphs, links."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app

from .schema import HISTORY_FIELDS, plain

#: How the place of a meeting whose city and economy are both unknown reads.
NO_PLACE = "to be announced"


def item_url(section: str, slug: str, base_url: str) -> str:
    """The public page of an item (served by content.views.item_page): ``/meetings/<slug>`` and the like."""
    return f"{base_url}/{section}/{slug}"


def org_today(moment: datetime) -> date:
    """The date ``moment`` falls on in the organisation's time zone (ORG_TIMEZONE)."""
    return moment.astimezone(ZoneInfo(current_app.config["ORG_TIMEZONE"])).date()


def long_date(day: date) -> str:
    """``21 August 2023``."""
    return f"{day.day} {day:%B %Y}"


def date_range(start: date, end: date, year: bool = True) -> str:
    """``21 August 2023``, ``14–15 November 2023`` or ``30 August – 2 September 2024``; without ``year``,
    ``14–15 November`` for a range within one year that its reader knows from elsewhere."""
    last = long_date(end) if year or start.year != end.year else f"{end.day} {end:%B}"
    if start == end:
        return last
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{last}"
    if start.year == end.year:
        return f"{start.day} {start:%B} – {last}"
    return f"{long_date(start)} – {last}"


def place(city: str | None, economy: str | None) -> str:
    """``Lima, Peru``, or whichever of the two is known."""
    return ", ".join(p for p in (city, economy) if p)


def paragraphs(text: str) -> list[str]:
    """Plain text (as the importer stores it: no markup) split into paragraphs at blank lines."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def meeting_history(meeting: Any, changes: Iterable[Any]) -> list[dict[str, str]]:
    """A meeting's changes (MeetingChange rows, newest first) in words, each with its date in ORG_TIMEZONE.

    A change records only the fields it changed; the rest are the meeting's as they stood then, worked out
    backwards from the meeting as it is now."""
    zone = ZoneInfo(current_app.config["ORG_TIMEZONE"])
    state = {name: plain(getattr(meeting, name)) for name in HISTORY_FIELDS}
    history = []
    for change in changes:
        after = {**state, **{name: new for name, (_, new) in change.changes.items() if name in state}}
        before = {**after, **{name: old for name, (old, _) in change.changes.items() if name in state}}
        moment = change.changed_at.astimezone(zone)
        words = change_words(before, after)
        if words:
            history.append({"date": long_date(moment.date()), "datetime": moment.isoformat(), "text": words})
        state = before
    return history


def change_words(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``dates 1–2 December → 8–9 December 2026; place Lima → Cusco``: what differs between two versions."""
    parts = []
    if before["title"] != after["title"]:
        parts.append(f"title {before['title']} → {after['title']}")
    old, new = _dates(before), _dates(after)
    if old != new:
        same_year = len({day.year for day in old + new}) == 1
        parts.append(f"dates {date_range(*old, year=not same_year)} → {date_range(*new)}")
    if (before["city"], before["economy"]) != (after["city"], after["economy"]):
        parts.append(f"place {_place_change(before, after)}")
    if before["status"] != after["status"]:
        parts.append(f"status {before['status']} → {after['status']}")
    return "; ".join(parts)


def _dates(version: dict[str, Any]) -> tuple[date, date]:
    """A meeting version's first and last day."""
    return date.fromisoformat(version["start_date"]), date.fromisoformat(version["end_date"])


def _place_change(before: dict[str, Any], after: dict[str, Any]) -> str:
    """``Lima → Cusco`` when only the city moved, else both whole places (``to be announced`` for none)."""
    if before["economy"] == after["economy"] and before["city"] and after["city"]:
        return f"{before['city']} → {after['city']}"
    return (
        f"{place(before['city'], before['economy']) or NO_PLACE} → {place(after['city'], after['economy']) or NO_PLACE}"
    )
