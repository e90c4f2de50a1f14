"""Meetings as iCalendar: one meeting's "add to calendar" file and the calendar of all meetings to subscribe to."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vDuration

from ..models import Meeting

PRODID = "-//mailer//SMEWG meetings//EN"
CALENDAR_NAME = "SMEWG meetings"
#: How often a subscribed calendar app should fetch the feed again (RFC 7986 and its Outlook spelling).
REFRESH_INTERVAL = timedelta(hours=6)
#: The meeting fields a calendar event shows: a change to any of them bumps the meeting's SEQUENCE.
EVENT_FIELDS = frozenset({"title", "start_date", "end_date", "city", "economy", "status", "summary", "link"})


def meeting_uid(slug: str, base_url: str) -> str:
    """A UID that stays the same for a meeting however often it changes (its slug never changes)."""
    return f"meeting-{slug}@{urlsplit(base_url).hostname or 'mailer'}"


def calendar_url(slug: str, base_url: str) -> str:
    """The public address of a meeting's .ics file (served by content.views.meeting_ics)."""
    return f"{base_url}/meetings/{slug}.ics"


def feed_url(base_url: str) -> str:
    """The calendar of all meetings as a ``webcal:`` address, which calendar apps offer to subscribe to."""
    return "webcal://" + base_url.split("://", 1)[-1] + "/meetings.ics"


def meeting_calendar(meeting: Meeting, base_url: str) -> bytes:
    """A VCALENDAR holding the one meeting's event."""
    calendar = _calendar()
    calendar.add_component(meeting_event(meeting, base_url))
    return calendar.to_ical()


def meetings_calendar(meetings: Iterable[Meeting], base_url: str) -> bytes:
    """The calendar of all ``meetings``, named and with a refresh interval for calendar apps that subscribe."""
    calendar = _calendar()
    calendar.add("x-wr-calname", CALENDAR_NAME)
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))  # an X- property has no known type
    for meeting in meetings:
        calendar.add_component(meeting_event(meeting, base_url))
    return calendar.to_ical()


def _calendar() -> Calendar:
    """An empty VCALENDAR with this service's PRODID."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    return calendar


def meeting_event(meeting: Meeting, base_url: str) -> Event:
    """An all-day VEVENT spanning the meeting's dates (DTEND is exclusive), cancelled or confirmed."""
    changed = _utc(meeting.updated_at)
    event = Event()
    event.add("uid", meeting_uid(meeting.slug, base_url))
    event.add("dtstamp", changed)  # without METHOD, DTSTAMP is the last change (RFC 5545 3.8.7.2)
    event.add("last-modified", changed)
    event.add("sequence", meeting.sequence)
    event.add("dtstart", meeting.start_date)
    event.add("dtend", meeting.end_date + timedelta(days=1))
    event.add("summary", meeting.title)
    event.add("status", "CANCELLED" if meeting.status == "cancelled" else "CONFIRMED")
    place = ", ".join(p for p in (meeting.city, meeting.economy) if p)
    if place:
        event.add("location", place)
    if meeting.summary:
        event.add("description", meeting.summary)
    if meeting.link:
        event.add("url", meeting.link)
    return event


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC, as DTSTAMP and LAST-MODIFIED must be (a naive one is taken as UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
