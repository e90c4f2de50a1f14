"""A fetched document as items: RSS/Atom entries as news values, iCalendar events as meeting values.

Values are what a content file would hold for the fields a feed gives (dates as ISO strings),
made to fit: markup turned into plain paragraphs (nh3 drops scripts, styles and every other tag),
one-line fields on one line and cut to their length. The importer's rules check them afterwards.

Recurring events (RRULE, RDATE, or an exception with RECURRENCE-ID) are skipped and counted:
a meeting happens once, and a series' "next occurrence" would move at every fetch.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import icalendar
import nh3

from ..content.schema import MAX_TEXT, SECTIONS
from ..text import CONTROL

#: Tags that end a paragraph; nh3 keeps them (without attributes) so they can become paragraph breaks.
BREAKS = frozenset(
    {"p", "br", "div", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
     "pre", "hr", "table", "tr", "section", "article", "header", "footer", "figure", "figcaption"}
)  # fmt: skip
#: Tags whose content is dropped with them, not kept as text.
DROPPED = frozenset({"script", "style", "template", "noscript", "iframe", "object", "svg", "math", "title"})
TAG = re.compile(r"<[^>]*>")
HTML_TYPES = ("text/html", "application/xhtml+xml")


class ParseError(ValueError):
    """A document that is not the kind of feed expected; the message says so in words."""


@dataclass
class Entry:
    """One entry or event: its guid (or UID) and its values as a content file would hold them."""

    guid: str
    values: dict[str, Any]


@dataclass
class Parsed:
    """A document's title, its entries, and what was left out (with how many of each reason)."""

    title: str | None
    entries: list[Entry] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)

    def leave_out(self, reason: str) -> None:
        """Count one entry left out for ``reason``."""
        self.left_out[reason] = self.left_out.get(reason, 0) + 1


def text_from_html(markup: str) -> str:
    """HTML as plain paragraphs: block tags and <br> become paragraph breaks, entities plain characters."""
    cleaned = nh3.clean(
        markup, tags=set(BREAKS), attributes={}, clean_content_tags=set(DROPPED), strip_comments=True, link_rel=None
    )
    # nh3 escapes every "<" that is text, so what looks like a tag now is one of BREAKS.
    return text_from_plain(html.unescape(TAG.sub("\n\n", cleaned)))


def text_from_plain(text: str) -> str:
    """Plain text tidied: paragraphs at blank lines, whitespace inside each one collapsed, controls gone."""
    paragraphs = (" ".join(CONTROL.sub(" ", part).split()) for part in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, whitespace collapsed, cut to ``limit`` characters."""
    return cut(" ".join(CONTROL.sub(" ", text).split()), limit)


def cut(text: str, limit: int) -> str:
    """``text`` when it fits in ``limit`` characters, else cut at a word near the end with "…"."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space > limit * 2 // 3 else head).rstrip() + "…"


def _limit(section: str, name: str) -> int:
    """The longest value the schema allows in field ``name`` of ``section``."""
    return next(f.max_length for f in SECTIONS[section][1] if f.name == name) or MAX_TEXT


def _http_url(value: Any) -> str | None:
    """``value`` when it is an http(s) URL that fits a link field, else None (javascript: and the like)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    ok = re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE) and len(value) <= 2000 and not CONTROL.search(value)
    return value if ok else None


def parse_news(body: bytes, url: str, zone: ZoneInfo) -> Parsed:
    """An RSS or Atom document as news entries (a ParseError when it is neither).

    ``published_on`` is None for an entry without a date: the caller knows when it was first seen."""
    document = feedparser.parse(io.BytesIO(body), response_headers={"content-location": url})
    if not document.get("version"):
        raise ParseError("not an RSS or Atom feed")
    title = document.feed.get("title")
    parsed = Parsed(one_line(title, 300) if isinstance(title, str) else None)
    for item in document.entries:
        guid = item.get("id") or item.get("link") or ""
        if not guid and item.get("title"):
            guid = f"{item.get('title')}|{item.get('published') or item.get('updated') or ''}"
        if not guid:
            parsed.leave_out("no id, link or title")
            continue
        parsed.entries.append(Entry(str(guid), _news_values(item, zone)))
    return parsed


def _news_values(item: Any, zone: ZoneInfo) -> dict[str, Any]:
    """One feedparser entry as a news item's values."""
    title = _detail_text(item.get("title_detail"), item.get("title", ""))
    content = item.get("content") or []
    detail = next((c for c in content if c.get("type") in HTML_TYPES), content[0] if content else None)
    body = _detail_text(detail or item.get("summary_detail"), item.get("summary", ""))
    moment = item.get("published_parsed") or item.get("updated_parsed")
    published = datetime(*moment[:6], tzinfo=UTC).astimezone(zone).date().isoformat() if moment else None
    return {
        "title": one_line(title, _limit("news", "title")),
        "published_on": published,
        "body": cut(body or one_line(title, MAX_TEXT), _limit("news", "body")),
        "link": _http_url(item.get("link")),
    }


def _detail_text(detail: Any, fallback: str) -> str:
    """A feedparser text construct as plain text: HTML sanitised into paragraphs, plain text tidied."""
    value = detail.get("value", "") if detail else fallback
    if not isinstance(value, str):
        return ""
    kind = detail.get("type", "text/html") if detail else "text/html"
    return text_from_html(value) if kind in HTML_TYPES else text_from_plain(value)


def parse_calendar(body: bytes, zone: ZoneInfo, today: date, meeting_kind: str) -> Parsed:
    """An iCalendar document's single events as meeting entries (a ParseError when it is not iCalendar)."""
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError):
        # AttributeError too: icalendar 7.3 trips over some broken parameters (a repeated VALUE=) that way.
        raise ParseError("not an iCalendar document") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise ParseError("not an iCalendar document")
    name = calendar.get("X-WR-CALNAME")
    parsed = Parsed(one_line(str(name), 300) if name else None)
    for event in calendar.walk("VEVENT"):
        uid = _text(event, "UID").strip()
        if not uid:
            parsed.leave_out("no UID")
        elif any(key in event for key in ("RRULE", "RDATE", "RECURRENCE-ID")):
            parsed.leave_out("recurring")
        else:
            try:
                parsed.entries.append(Entry(uid, _meeting_values(event, zone, today, meeting_kind)))
            except (KeyError, ValueError, TypeError, AttributeError, OverflowError):
                # icalendar hands back odd values (or raises) for a broken property; the event is left out.
                parsed.leave_out("unreadable")
    return parsed


def _text(event: Any, name: str) -> str:
    """A property's text; the first value when the event repeats the property, "" when it has none."""
    value = event.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else ""


def _meeting_values(event: Any, zone: ZoneInfo, today: date, meeting_kind: str) -> dict[str, Any]:
    """One VEVENT as a meeting's values; ValueError (and the like) when its dates cannot be read."""
    start, end = _dates(event, zone)
    cancelled = _text(event, "STATUS").upper() == "CANCELLED"
    status = "cancelled" if cancelled else ("held" if end < today else "upcoming")
    description = _text(event, "DESCRIPTION")
    summary = text_from_html(description) if TAG.search(description) else text_from_plain(description)
    return {
        "title": one_line(_text(event, "SUMMARY"), _limit("meetings", "title")),
        "kind": meeting_kind,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "city": one_line(_text(event, "LOCATION"), _limit("meetings", "city")) or None,
        "status": status,
        "summary": cut(summary, _limit("meetings", "summary")) or None,
        "link": _http_url(_text(event, "URL")),
    }


def _dates(event: Any, zone: ZoneInfo) -> tuple[date, date]:
    """The first and last day of an event in ``zone``: an all-day DTEND is exclusive, and so is an end at midnight.

    A time whose TZID names no zone icalendar knows is read as floating, in ``zone``."""
    start = event.decoded("DTSTART")  # KeyError when there is none
    if "DTEND" in event:
        end = event.decoded("DTEND")
    elif "DURATION" in event:
        end = start + event.decoded("DURATION")
    else:
        end = start if isinstance(start, datetime) else start + timedelta(days=1)
    if not isinstance(start, date) or not isinstance(end, date):
        raise ValueError("a date icalendar could not read")  # it hands back the text it found
    first, last = _day(start, zone), _day(end, zone)
    exclusive = not isinstance(end, datetime) or _local(end, zone).time() == datetime.min.time()
    if exclusive and last > first:
        last -= timedelta(days=1)
    return first, max(first, last)


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    """A datetime in ``zone``; a floating one (no TZID, no Z) is read as already in ``zone``."""
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)


def _day(value: date | datetime, zone: ZoneInfo) -> date:
    """The date a DTSTART or DTEND value falls on in ``zone``."""
    return _local(value, zone).date() if isinstance(value, datetime) else value
