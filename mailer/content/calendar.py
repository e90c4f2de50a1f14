"""An "add to calendar" iCalendar file for one meeting."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from icalendar import Calendar, Event

from ..models import Meeting

PRODID = "-//mailer//SMEWG meetings//EN"


def meeting_uid(slug: str, base_url: str) -> str:
    """A UID that stays the same for a meeting however often it changes."""
    return f"meeting-{slug}@{urlsplit(base_url).hostname or 'mailer'}"


def calendar_url(slug: str, base_url: str) -> str:
    """The public address of a meeting's .ics file (served by content.views.meeting_ics)."""
    return f"{base_url}/meetings/{slug}.ics"


def meeting_calendar(meeting: Meeting, base_url: str) -> bytes:
    """A VCALENDAR with one all-day VEVENT spanning the meeting's dates (DTEND is exclusive)."""
    event = Event()
    event.add("uid", meeting_uid(meeting.slug, base_url))
    event.add("dtstamp", meeting.updated_at)
    event.add("dtstart", meeting.start_date)
    event.add("dtend", meeting.end_date + timedelta(days=1))
    event.add("summary", meeting.title)
    place = ", ".join(p for p in (meeting.city, meeting.economy) if p)
    if place:
        event.add("location", place)
    if meeting.summary:
        event.add("description", meeting.summary)
    if meeting.link:
        event.add("url", meeting.link)
    if meeting.status == "cancelled":
        event.add("status", "CANCELLED")
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add_component(event)
    return calendar.to_ical()
