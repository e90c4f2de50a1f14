"""How items read to people, in digests and on their public pages: dates, places, paragraphs, links."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def item_url(section: str, slug: str, base_url: str) -> str:
    """The public page of an item (served by content.views.item_page): ``/meetings/<slug>`` and the like."""
    return f"{base_url}/{section}/{slug}"


def org_today(moment: datetime) -> date:
    """The date ``moment`` falls on in the organisation's time zone (ORG_TIMEZONE)."""
    return moment.astimezone(ZoneInfo(current_app.config["ORG_TIMEZONE"])).date()


def long_date(day: date) -> str:
    """``21 August 2023``."""
    return f"{day.day} {day:%B %Y}"


def date_range(start: date, end: date) -> str:
    """``21 August 2023``, ``14–15 November 2023`` or ``30 August – 2 September 2024``."""
    if start == end:
        return long_date(start)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}–{long_date(end)}"
    if start.year == end.year:
        return f"{start.day} {start:%B} – {long_date(end)}"
    return f"{long_date(start)} – {long_date(end)}"


def place(city: str | None, economy: str | None) -> str:
    """``Lima, Peru``, or whichever of the two is known."""
    return ", ".join(p for p in (city, economy) if p)


def paragraphs(text: str) -> list[str]:
    """Plain text (as the importer stores it: no markup) split into paragraphs at blank lines."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]
