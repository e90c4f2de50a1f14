"""The content importer (idempotent, all-or-nothing, errors with their line) and the meeting .ics."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import icalendar
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mailer.content.importer import ContentFileError, import_text
from mailer.extensions import db
from mailer.models import AuditEntry, Meeting, NewsItem, Project
from tests.data import meeting

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "smewg-content.json"


def _counts() -> tuple[int, ...]:
    """Rows in each content table and the audit log."""
    return tuple(
        db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()
        for model in (Meeting, Project, NewsItem, AuditEntry)
    )


def test_example_imports_once_then_changes_nothing(app: Flask, runner: FlaskCliRunner) -> None:
    """The shipped example imports as demo content; importing it again creates and bumps nothing."""
    first = runner.invoke(args=["content", "import", str(EXAMPLE), "--demo"])
    assert first.exit_code == 0, first.output
    assert "9 created, 0 updated, 0 unchanged" in first.output
    with app.app_context():
        stamps = dict(db.session.execute(db.select(Meeting.slug, Meeting.updated_at)).all())
        assert _counts() == (4, 3, 2, 1)
        assert all(db.session.execute(db.select(Meeting.demo)).scalars())
    again = runner.invoke(args=["content", "import", str(EXAMPLE)])
    assert again.exit_code == 0, again.output
    assert "0 created, 0 updated, 9 unchanged" in again.output
    with app.app_context():
        assert dict(db.session.execute(db.select(Meeting.slug, Meeting.updated_at)).all()) == stamps
        assert _counts() == (4, 3, 2, 1)


def test_changed_field_updates_the_row_and_records_it(app: Flask) -> None:
    """Changing one field updates that row only, bumps its updated_at and writes an audit entry."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(), meeting(slug="other", number=57)]}))
        before = dict(db.session.execute(db.select(Meeting.slug, Meeting.updated_at)).all())
        report = import_text(json.dumps({"meetings": [meeting(city="Arequipa")]}), source="edit.json")
        assert report.updated == {"meetings": ["smewg-58"]}
        assert report.summary() == "0 created, 1 updated, 0 unchanged"
        after = dict(db.session.execute(db.select(Meeting.slug, Meeting.updated_at)).all())
        assert after["smewg-58"] > before["smewg-58"]
        assert after["other"] == before["other"]
        entry = db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id.desc())).scalars().first()
        assert (entry.action, entry.target, entry.detail["updated"]) == (
            "content.import",
            "edit.json",
            {"meetings": ["smewg-58"]},
        )


BAD_FILES = [
    # (document text, expected line, expected words)
    ('{"meetings": [\n  {"slug": "a",\n   "title": "x",,\n', 3, "broken JSON"),
    ('{"meetings": [\n  {"slug": "a"}\n]}', 2, "meetings[0]: missing title"),
    (
        '{\n"meetings": [\n' + json.dumps(meeting()) + ",\n" + json.dumps(meeting(slug="b", number="57")) + "\n]}",
        4,
        "meetings[1].number: must be a whole number",
    ),
    ('{"projects": [\n{"slug": "p", "title": "P",\n "status": "finished"}]}', 3, "projects[0].status: must be one of"),
    ('{"meetings": [\n' + json.dumps(meeting(start_date="2024-02-30")) + "]}", 2, "not a real date"),
    ('{"meetings": [\n' + json.dumps(meeting(link="javascript:alert(1)")) + "]}", 2, "http:// or https://"),
    ('{"news": [\n{"slug": "Bad Slug", "title": "t", "published_on": "2024-01-01", "body": "b"}]}', 2, "news[0].slug"),
    (
        '{"news": [\n{"slug": "n", "title": "' + "x" * 301 + '", "published_on": "2024-01-01", "body": "b"}]}',
        2,
        "news[0].title: is longer than 300",
    ),
    (
        '{"news": [\n{"slug": "n", "title": "a\\r\\nBcc: x", "published_on": "2024-01-01", "body": "b"}]}',
        2,
        "single line",
    ),
    ('{"meetings": {"slug": "a"}}', 1, "meetings: must be an array"),
    ('{"news": [\n{"slug": "n", "title": "\\ud800", "published_on": "2024-01-01", "body": "b"}]}', 2, "surrogate"),
    ('["not", "an", "object"]', 1, "must hold a JSON object"),
    ("[" * 100_000, None, "nested too deeply"),
]


def test_bad_files_are_rejected_with_the_line_and_import_nothing(app: Flask) -> None:
    """Each bad file names its line and item path; not one row of it (nor of its valid items) is written."""
    with app.app_context():
        for text, line, words in BAD_FILES:
            with pytest.raises(ContentFileError) as caught:
                import_text(text, source="bad.json")
            where = f"bad.json:{line}: " if line else "bad.json: "
            assert where in str(caught.value), (text[:80], str(caught.value))
            assert words in str(caught.value), (text[:80], str(caught.value))
            assert _counts() == (0, 0, 0, 0)


def test_cli_rejects_a_bad_file_with_nonzero_exit(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """``content import`` on a file with a bad last item exits non-zero and imports none of it."""
    bad = tmp_path / "content.json"
    bad.write_text(json.dumps({"meetings": [meeting(), meeting(slug="late", kind="party")]}, indent=1))
    result = runner.invoke(args=["content", "import", str(bad)])
    assert result.exit_code != 0
    assert "nothing imported" in result.output
    assert "content.json:17: meetings[1].kind" in result.output
    missing = runner.invoke(args=["content", "import", str(tmp_path / "nope.json")])
    assert missing.exit_code != 0
    assert "cannot read the file" in missing.output
    huge = tmp_path / "huge.json"
    huge.write_bytes(b'{"news": []}' + b" " * 5 * 1024 * 1024)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"news": [\n{"slug": "caf\xe9"}]}')
    for path, words in ((huge, "larger than 5 MB"), (latin, "latin.json:2: the file is not UTF-8")):
        refused = runner.invoke(args=["content", "import", str(path)])
        assert refused.exit_code != 0, refused.output
        assert words in refused.output, refused.output
    with app.app_context():
        assert _counts() == (0, 0, 0, 0)


def test_meeting_calendar_file(app: Flask, client: FlaskClient) -> None:
    """The .ics is a VCALENDAR with an all-day VEVENT over the meeting's dates and a stable UID."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting()]}))
    response = client.get("/meetings/smewg-58.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = icalendar.Calendar.from_ical(response.data)
    (event,) = calendar.walk("VEVENT")
    assert event.decoded("dtstart") == date(2024, 3, 4)
    assert event.decoded("dtend") == date(2024, 3, 6)
    assert str(event["location"]) == "Lima, Peru"
    assert str(event["summary"]) == meeting()["title"]
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(end_date="2024-03-07")]}))
    changed = icalendar.Calendar.from_ical(client.get("/meetings/smewg-58.ics").data).walk("VEVENT")[0]
    assert changed["uid"] == event["uid"]
    assert changed.decoded("dtend") == date(2024, 3, 8)
    assert client.get("/meetings/nope.ics").status_code == 404
    for bad in ("a" * 500, "%00", "Smewg-58", "x%27%20OR%201=1--"):
        assert client.get(f"/meetings/{bad}.ics").status_code == 404, bad


def test_meeting_calendar_file_follows_an_edit_and_stays_per_meeting(app: Flask, client: FlaskClient) -> None:
    """A cached .ics shows a cancellation on the next request, and each meeting keeps its own file."""
    other = meeting(slug="smewg-57-chile", number=57, title="57th SME Working Group Meeting")
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(), other]}))
    assert b"STATUS:CANCELLED" not in client.get("/meetings/smewg-58.ics").data
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(status="cancelled")]}))
    assert b"STATUS:CANCELLED" in client.get("/meetings/smewg-58.ics").data
    response = client.get("/meetings/smewg-57-chile.ics")
    assert b"57th SME Working Group Meeting" in response.data
    assert b"STATUS:CANCELLED" not in response.data
    assert response.headers["Content-Disposition"] == 'attachment; filename="smewg-57-chile.ics"'
