"""The calendar of all meetings at /meetings.ics: valid iCalendar, UIDs shared with each meeting's .ics,
SEQUENCE bumped on every change, cancellations and archiving, and the home page's webcal: link."""

from __future__ import annotations

import json
from datetime import date

import icalendar
import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.content.importer import import_text
from mailer.content.service import archive_item
from tests.conftest import AuthActions
from tests.data import meeting

OTHER = meeting(slug="smewg-57", title="57th SMEWG Meeting", number=57, start_date="2023-08-14", end_date="2023-08-15")
#: A meeting as the console's form posts it (every field a string).
FORM = {**{name: str(value) for name, value in meeting().items()}, "summary": "", "link": ""}


@pytest.fixture
def meetings(app: Flask) -> None:
    """Two meetings, imported."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(), OTHER]}))


def _events(client: FlaskClient) -> dict[str, icalendar.Event]:
    """The feed's events by the meeting's SUMMARY."""
    response = client.get("/meetings.ics")
    assert response.status_code == 200
    return {str(e["summary"]): e for e in icalendar.Calendar.from_ical(response.data).walk("VEVENT")}


def _event(client: FlaskClient, title: str = "58th SMEWG Meeting") -> icalendar.Event:
    """One meeting's event in the feed."""
    return _events(client)[title]


@pytest.mark.usefixtures("meetings")
def test_feed_is_valid_icalendar(client: FlaskClient) -> None:
    """VERSION, PRODID and the subscription hints; every VEVENT has UID, DTSTAMP, DTSTART; all-day dates with an
    exclusive DTEND; lines end in CRLF and are folded at 75 octets."""
    response = client.get("/meetings.ics")
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    calendar = icalendar.Calendar.from_ical(response.data)
    assert str(calendar["version"]) == "2.0"
    assert str(calendar["prodid"])
    assert str(calendar["x-wr-calname"]) == "SMEWG meetings"
    assert b"\r\nREFRESH-INTERVAL;VALUE=DURATION:PT6H\r\n" in response.data
    assert b"\r\nX-PUBLISHED-TTL:PT6H\r\n" in response.data
    events = calendar.walk("VEVENT")
    assert len(events) == 2
    for event in events:
        assert {"UID", "DTSTAMP", "DTSTART", "DTEND", "SEQUENCE", "LAST-MODIFIED"} <= set(event)
        assert event["dtstamp"].to_ical().endswith(b"Z")  # DTSTAMP is UTC
    event = _event(client)
    assert (event.decoded("dtstart"), event.decoded("dtend")) == (date(2024, 3, 4), date(2024, 3, 6))
    assert str(event["status"]) == "CONFIRMED"
    assert b"DTSTART;VALUE=DATE:20240304\r\n" in response.data
    assert response.data.endswith(b"\r\n")
    lines = response.data.split(b"\r\n")
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert all(len(line) <= 75 for line in lines)


def test_long_lines_are_folded(app: Flask, client: FlaskClient) -> None:
    """A summary far longer than a line is folded into lines of at most 75 octets and reads back whole."""
    summary = "Ministers of the twenty-one economies meet in Lima — réunion ministérielle. " * 6
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(summary=summary)]}))
    data = client.get("/meetings.ics").data
    assert all(len(line) <= 75 for line in data.split(b"\r\n"))
    assert str(_event(client)["description"]) == summary


@pytest.mark.usefixtures("meetings")
def test_uids_are_shared_with_each_meetings_file_and_stable(app: Flask, client: FlaskClient) -> None:
    """Each event's UID is the one in the meeting's own .ics; UIDs are distinct and survive an edit."""
    events = _events(client)
    for slug, title in (("smewg-58", "58th SMEWG Meeting"), ("smewg-57", "57th SMEWG Meeting")):
        (own,) = icalendar.Calendar.from_ical(client.get(f"/meetings/{slug}.ics").data).walk("VEVENT")
        assert own["uid"] == events[title]["uid"]
        assert own["sequence"] == events[title]["sequence"]
    assert len({str(e["uid"]) for e in events.values()}) == 2
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(city="Cusco")]}))
    assert _event(client)["uid"] == events["58th SMEWG Meeting"]["uid"]


@pytest.mark.usefixtures("meetings")
def test_sequence_increases_on_an_import_that_changes_a_meeting_only(app: Flask, client: FlaskClient) -> None:
    """A re-import that changes nothing keeps SEQUENCE; each changed date, place or status raises it; a field the
    event does not show (the meeting's number) leaves it."""
    assert _event(client)["sequence"] == 0
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(), OTHER]}))
    assert _event(client)["sequence"] == 0
    for step, changed in enumerate(({"end_date": "2024-03-06"}, {"city": "Cusco"}, {"status": "postponed"}), 1):
        with app.app_context():
            import_text(json.dumps({"meetings": [meeting(**changed)]}))
        event = _event(client)
        assert event["sequence"] == step, changed
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(status="postponed", number=99)]}))
    assert _event(client)["sequence"] == 3
    assert _event(client, "57th SMEWG Meeting")["sequence"] == 0


@pytest.mark.usefixtures("meetings")
def test_sequence_increases_after_a_console_edit(client: FlaskClient, auth: AuthActions) -> None:
    """An edit saved in the console raises SEQUENCE (LAST-MODIFIED never goes back); saving it unchanged does not."""
    before = _event(client)
    auth.login()
    assert auth.post("/staff/content/meetings/smewg-58", {**FORM, "title": "58th SMEWG"}).status_code == 303
    after = _event(client, "58th SMEWG")
    assert after["sequence"] == before["sequence"] + 1
    assert after.decoded("last-modified") >= before.decoded("last-modified")  # iCalendar counts whole seconds
    assert auth.post("/staff/content/meetings/smewg-58", {**FORM, "title": "58th SMEWG"}).status_code == 303
    assert _event(client, "58th SMEWG")["sequence"] == after["sequence"]


@pytest.mark.usefixtures("meetings")
def test_cancelled_meeting_is_cancelled_and_archived_one_absent(app: Flask, client: FlaskClient) -> None:
    """A cancelled meeting stays in the feed with STATUS:CANCELLED; an archived one leaves it."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(status="cancelled")]}))
    events = _events(client)
    assert str(events["58th SMEWG Meeting"]["status"]) == "CANCELLED"
    assert str(events["57th SMEWG Meeting"]["status"]) == "CONFIRMED"
    with app.app_context():
        assert archive_item("meetings", "smewg-57", actor="test")
    assert set(_events(client)) == {"58th SMEWG Meeting"}


def test_empty_feed_is_still_a_calendar(client: FlaskClient) -> None:
    """With no meetings the feed is a valid calendar without events."""
    calendar = icalendar.Calendar.from_ical(client.get("/meetings.ics").data)
    assert str(calendar["version"]) == "2.0"
    assert calendar.walk("VEVENT") == []


def test_home_page_links_the_feed_as_webcal(app: Flask, client: FlaskClient) -> None:
    """The home page offers the feed at its webcal: address."""
    host = app.config["BASE_URL"].split("://", 1)[1]
    assert f'href="webcal://{host}/meetings.ics"' in client.get("/").get_data(as_text=True)
