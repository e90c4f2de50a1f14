"""What a meeting, a project and a news item are made of: one list of fields per section.

The importer checks against these fields, the console's forms are drawn from them, and a
digest snapshots an item through them, so a field is added in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..models import MEETING_KINDS, MEETING_STATUSES, PROJECT_STATUSES, SLUG_LENGTH, Meeting, NewsItem, Project

#: What a slug looks like: lowercase letters, digits and single hyphens (at most SLUG_LENGTH characters).
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Field:
    """One field of an item: its JSON name (the column's name) and what it may hold."""

    name: str
    kind: str  # line, text, date, int, url, enum, bool
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None


COMMON = (
    Field("slug", "line", required=True, max_length=SLUG_LENGTH),
    Field("title", "line", required=True, max_length=300),
    Field("demo", "bool"),
)
SECTIONS: dict[str, tuple[type, tuple[Field, ...]]] = {
    "meetings": (
        Meeting,
        COMMON
        + (
            Field("kind", "enum", required=True, choices=MEETING_KINDS),
            Field("number", "int", minimum=1, maximum=100_000),
            Field("start_date", "date", required=True),
            Field("end_date", "date"),
            Field("city", "line", max_length=120),
            Field("economy", "line", max_length=120),
            Field("status", "enum", required=True, choices=MEETING_STATUSES),
            Field("summary", "text", max_length=MAX_TEXT),
            Field("link", "url", max_length=2000),
        ),
    ),
    "projects": (
        Project,
        COMMON
        + (
            Field("reference", "line", max_length=60),
            Field("status", "enum", required=True, choices=PROJECT_STATUSES),
            Field("funding_source", "line", max_length=200),
            Field("year", "int", minimum=1989, maximum=2200),
            Field("summary", "text", max_length=MAX_TEXT),
            Field("link", "url", max_length=2000),
        ),
    ),
    "news": (
        NewsItem,
        COMMON
        + (
            Field("published_on", "date", required=True),
            Field("body", "text", required=True, max_length=MAX_TEXT),
        ),
    ),
}


def entry(section: str, item: Any) -> dict[str, Any]:
    """An item of ``section`` as a JSON-safe dict of its fields (dates as ISO strings)."""
    values = {spec.name: getattr(item, spec.name) for spec in SECTIONS[section][1]}
    return {name: value.isoformat() if isinstance(value, date) else value for name, value in values.items()}
