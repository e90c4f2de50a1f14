"""Subscribers as CSV: export with consent evidence; import all-or-nothing, never confirming without consent."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from mailer.extensions import db
from mailer.models import ConsentEvent, Subscriber, SubscriberStatus
from tests.conftest import CaughtMail
from tests.subscribing import add_subscriber, events, subscriber

HEADER = "email,name,topics,consent_at,consent_source,consent_version,status\n"


def _import(runner: FlaskCliRunner, tmp_path: Path, text: str | bytes, *extra: str) -> object:
    """Write ``text`` to a file and run ``subscribers import`` on it."""
    path = tmp_path / "list.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return runner.invoke(args=["subscribers", "import", str(path), *extra])


def _all(app: Flask) -> dict[str, tuple[str, int]]:
    """Every subscriber as address -> (status, topics)."""
    with app.app_context():
        rows = db.session.execute(db.select(Subscriber.email, Subscriber.status, Subscriber.topics))
        return {email: (status, topics) for email, status, topics in rows}


def test_import_confirms_only_with_consent_and_keeps_known_addresses(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, mailbox: CaughtMail
) -> None:
    """consent_at makes a row confirmed with its evidence logged; without it, pending and no email."""
    add_subscriber(app, "left@example.org", SubscriberStatus.UNSUBSCRIBED)
    result = _import(runner, tmp_path, HEADER + (
        "ana@example.org,Ana,meetings news,2023-08-21T10:00:00+00:00,paper form at SMEWG 57,2023-08,\n"
        "ben@example.org,,projects,,,,\n"
        "LEFT@example.org,Left,,2023-01-01T00:00:00,,,\n"
        "gone@example.org,,,,,,suppressed\n"
    ))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "imported 1 confirmed, 1 pending, 1 unsubscribed or suppressed; 1 already known" in result.output
    assert _all(app) == {
        "left@example.org": ("unsubscribed", 7),
        "ana@example.org": ("confirmed", 5),
        "ben@example.org": ("pending", 2),
        "gone@example.org": ("suppressed", 7),
    }
    [event] = events(app, "ana@example.org")
    assert (event.event, event.source, event.consent_version) == ("import", "import", "2023-08")
    assert event.detail["consent_source"] == "paper form at SMEWG 57"
    assert event.detail["line"] == 2
    assert mailbox.messages == []


def test_import_can_ask_pending_rows_to_confirm(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, mailbox: CaughtMail, celery_worker: object
) -> None:
    """--send-confirmations emails the rows without consent, and only them."""
    result = _import(runner, tmp_path, HEADER + "ben@example.org,,,,,,\nana@example.org,,,2024-01-01T00:00:00,,,\n",
                     "--send-confirmations")  # fmt: skip
    assert result.exit_code == 0, result.output
    [message] = mailbox.wait_for(1)
    assert message["To"] == "ben@example.org"
    assert "confirm" in message["Subject"].lower()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("not-an-address,,,,,,\n", "line 3: email: This is not a valid email address"),
        ("ana@example.org,,parties,,,,\n", "line 3: topics: Choose topics among"),
        ("ana@example.org,,,,,,confirmed\n", "line 3: status: a confirmed row needs consent_at"),
        ("ana@example.org,,,yesterday,,,\n", "line 3: consent_at: not an ISO 8601 date and time"),
        ("ana@example.org,,,2999-01-01T00:00:00,,,\n", "line 3: consent_at: consent cannot have been given in the fu"),
        ("ana@example.org,,,,,,vip\n", "line 3: status: must be empty"),
        ("ana@example.org," + "n" * 201 + ",,,,,\n", "line 3: name: The name is too long"),
        ("\"ana@example.org\r\nBcc: x@example.org\",,,,,,\n", "line 3: email: The email address must be on one line."),
        ("ana@example.org,,,,,,,extra\n", "line 3: row: more values than columns"),
        ("ana@example.org,,,,,,\nANA@example.org,,,,,,\n", "line 4: email: ANA@example.org is already on line 3"),
        ("ana@example.org,,,2020-01-01T00:00:00," + "s" * 40 + ",,\n", "line 3: consent_source: must be one line"),
    ],
)  # fmt: skip
def test_bad_rows_import_nothing(app: Flask, runner: FlaskCliRunner, tmp_path: Path, body: str, problem: str) -> None:
    """Any bad row fails the whole file with its line and field; good rows before it are not imported."""
    result = _import(runner, tmp_path, HEADER + "ok@example.org,,,,,,\n" + body)
    assert result.exit_code == 1
    assert "nothing imported" in result.output
    assert problem in result.output
    assert _all(app) == {}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("name,topics\nAna,news\n", "the header must have an 'email' column"),
        ("email,password\nana@example.org,x\n", "unknown columns: password"),
        (b"email\n\xff\xfe@example.org\n", "not UTF-8 text"),
        ("", "the header must have an 'email' column"),
    ],
)
def test_bad_files_import_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, content: str | bytes, problem: str
) -> None:
    """A file without an email column, with unknown columns or not UTF-8 is refused."""
    result = _import(runner, tmp_path, content)
    assert result.exit_code == 1
    assert problem in result.output
    assert _all(app) == {}


def test_export_round_trips_with_consent_and_defuses_formulas(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    """Export lists everyone with consent evidence; a formula-like name is quoted; re-import keeps status."""
    _import(runner, tmp_path, HEADER + (
        "ana@example.org,=HYPERLINK(\"x\"),meetings,2023-08-21T10:00:00+00:00,paper form,2023-08,\n"
        "ben@example.org,Ben,,,,,\n"
        "cy@example.org,,,,,,unsubscribed\n"
    ))  # fmt: skip
    exported = runner.invoke(args=["subscribers", "export"])
    assert exported.exit_code == 0
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(exported.stdout))}
    assert set(rows) == {"ana@example.org", "ben@example.org", "cy@example.org"}
    ana = rows["ana@example.org"]
    assert (ana["status"], ana["topics"], ana["name"]) == ("confirmed", "meetings", '\'=HYPERLINK("x")')
    assert (ana["consent_at"], ana["consent_source"], ana["consent_version"]) == (
        "2023-08-21T10:00:00+00:00",
        "paper form",
        "2023-08",
    )
    assert rows["ben@example.org"]["consent_at"] == ""
    assert rows["ben@example.org"]["status"] == "pending"
    assert "exported 3 subscribers" in exported.stderr
    fresh = _import(runner, tmp_path, exported.stdout.replace("@example.org", "@example.net"))
    assert fresh.exit_code == 0, fresh.output
    assert _all(app)["cy@example.net"][0] == "unsubscribed"
    assert _all(app)["ana@example.net"][0] == "confirmed"
    assert subscriber(app, "ben@example.net").status == "pending"


def _rows(count: int, start: int = 0) -> str:
    """``count`` good rows with consent, one address each."""
    return "".join(f"reader.{n}@example.org,Reader {n},news,2024-05-01T08:00:00,stand at SMEWG 58,v2,\n"
                   for n in range(start, start + count))  # fmt: skip


def test_a_large_import_lands_complete_with_its_consent_log(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """5,000 rows across several insert batches: every subscriber, each with its own consent event."""
    result = _import(runner, tmp_path, HEADER + _rows(5000))
    assert result.exit_code == 0, result.output
    assert "imported 5000 confirmed, 0 pending" in result.output
    with app.app_context():
        rows = db.session.execute(db.select(Subscriber.email, Subscriber.status, Subscriber.topics)).all()
        assert {(email, status, topics) for email, status, topics in rows} == {
            (f"reader.{n}@example.org", "confirmed", 4) for n in range(5000)
        }
        logged = db.session.execute(
            db.select(Subscriber.email, ConsentEvent.detail).join(ConsentEvent.subscriber)
        ).all()
    assert len(logged) == 5000
    # Each event belongs to its own line's subscriber: the evidence names the line it came from.
    assert all(detail["line"] == int(email.split(".")[1].split("@")[0]) + 2 for email, detail in logged)


def test_a_bad_row_deep_in_a_large_file_imports_nothing(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """Rows before the bad one were already written in batches: they are rolled back with it."""
    text = HEADER + _rows(3998) + "not-an-address,,,,,,\n" + _rows(1000, start=3998)
    result = _import(runner, tmp_path, text)
    assert result.exit_code == 1
    assert "nothing imported" in result.output
    assert "line 4000: email: This is not a valid email address" in result.output
    assert _all(app) == {}
    with app.app_context():
        assert db.session.execute(db.select(db.func.count(ConsentEvent.id))).scalar_one() == 0


def test_many_problems_are_listed_fifty_then_counted(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """A file full of bad rows names the first 50 and says how many more there are."""
    result = _import(runner, tmp_path, HEADER + "bad,,,,,,\n" * 120)
    assert result.exit_code == 1
    assert "line 51: email" in result.output
    assert "line 52: email" not in result.output
    assert "… and 70 more" in result.output


def test_known_addresses_in_a_later_batch_stay_untouched(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """An address already known is left as it is, wherever it falls in the file."""
    add_subscriber(app, "reader.1500@example.org", SubscriberStatus.UNSUBSCRIBED, topics=1)
    add_subscriber(app, "Reader.2@example.org", SubscriberStatus.PENDING, topics=2)
    result = _import(runner, tmp_path, HEADER + _rows(2500))
    assert result.exit_code == 0, result.output
    assert "imported 2498 confirmed, 0 pending, 0 unsubscribed or suppressed; 2 already known" in result.output
    everyone = _all(app)
    assert everyone["reader.1500@example.org"] == ("unsubscribed", 1)
    assert everyone["Reader.2@example.org"] == ("pending", 2)
    assert len(everyone) == 2500
    assert events(app, "reader.1500@example.org") == []


def test_imported_rows_get_the_fields_of_their_status(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """Confirmed rows carry confirmed_at, pending ones a nonce of their own, opted-out ones their date or reason."""
    result = _import(runner, tmp_path, HEADER + (
        "ana@example.org,,,2023-08-21T10:00:00+00:00,,,\n"
        "ben@example.org,,,,,,\n"
        "cy@example.org,,,,,,\n"
        "dee@example.org,,,,,,unsubscribed\n"
        "eve@example.org,,,,,,suppressed\n"
    ), "--send-confirmations")  # fmt: skip
    assert result.exit_code == 0, result.output
    ana, ben, cy, dee, eve = (subscriber(app, f"{n}@example.org") for n in ("ana", "ben", "cy", "dee", "eve"))
    assert ana.confirmed_at is not None
    assert ana.confirm_nonce is None
    assert ana.link_version == 1
    assert ben.confirm_nonce
    assert cy.confirm_nonce
    assert ben.confirm_nonce != cy.confirm_nonce
    assert ben.confirmed_at is None
    assert ben.created_at is not None
    assert dee.unsubscribed_at is not None
    assert dee.confirmed_at is None
    assert eve.suppressed_reason == "imported from list.csv"
    [event] = events(app, "ana@example.org")
    assert event.detail == {"file": "list.csv", "line": 2, "consent_at": "2023-08-21T10:00:00+00:00",
                            "consent_source": None}  # fmt: skip
    assert event.occurred_at is not None


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_line_numbers_count_every_line_end_and_blank_line(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path, newline: str
) -> None:
    """CRLF, CR or LF files with a byte-order mark and blank lines: problems name the line as an editor shows it."""
    lines = [HEADER.strip(), "ok@example.org,,,,,,", "", "", '"two\nlines",,,,,,', "bad,,,,,,", "x"]
    result = _import(runner, tmp_path, ("\ufeff" + newline.join(lines)).encode())  # the last line has no end
    assert result.exit_code == 1
    assert "line 5: email: The email address must be on one line." in result.output
    assert "line 7: email: This is not a valid email address" in result.output
    assert "line 8: email: This is not a valid email address" in result.output


def test_a_file_that_stops_being_utf8_imports_nothing(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """A bad byte far into the file is found while streaming; the rows before it are rolled back."""
    good = (HEADER + _rows(1500)).encode()
    result = _import(runner, tmp_path, good + b"caf\xe9@example.org,,,,,,\n")
    assert result.exit_code == 1
    assert f"not UTF-8 text (byte {len(good) + 3})" in result.output
    assert _all(app) == {}
