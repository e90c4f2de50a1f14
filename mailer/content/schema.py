"""What a meeting, a project and a news item are made of: one list of fields per section.

The importer checks against these fields, the console's forms are drawn from them, and a
digest snapshots an item through them, so a field is added in one place.
"""

from __future__ import annotations

import re
import unicodedata
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

    @property
    def label(self) -> str:
        """What the console's form calls the field: ``Start date`` for ``start_date``."""
        return LABELS.get(self.name, self.name.replace("_", " ").capitalize())


#: Labels that are not simply the field's name written out.
LABELS = {"published_on": "Publication date", "demo": "Demo content"}


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
            Field("link", "url", max_length=2000),
        ),
    ),
}


#: The meeting fields whose changes a meeting's public history shows (a MeetingChange records them).
HISTORY_FIELDS = ("title", "start_date", "end_date", "city", "economy", "status")


def entry(section: str, item: Any) -> dict[str, Any]:
    """An item of ``section`` as a JSON-safe dict of its fields (dates as ISO strings)."""
    return {spec.name: plain(getattr(item, spec.name)) for spec in SECTIONS[section][1]}


def plain(value: Any) -> Any:
    """A field's value as JSON holds it (snapshots, feed entries, change history): dates as ISO strings."""
    return value.isoformat() if isinstance(value, date) else value


#: Latin letters that Unicode does not decompose into a base letter and an accent.
UNDECOMPOSED = str.maketrans({"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "ı": "i"})


def slug_from_title(title: str, length: int = SLUG_LENGTH) -> str:
    """A slug made from ``title``: accents folded to ASCII, words joined by "-", at most ``length``
    characters (cut at a word where one ends in the last third), "" when no letter or digit is left."""
    folded = unicodedata.normalize("NFKD", title.lower().translate(UNDECOMPOSED))
    folded = folded.encode("ascii", "ignore").decode()
    slug = "-".join(re.findall(r"[a-z0-9]+", folded))
    if len(slug) <= length:
        return slug
    cut = slug[: length + 1]
    word_end = cut.rfind("-")
    return cut[:word_end] if word_end > length * 2 // 3 else cut[:length].rstrip("-")
