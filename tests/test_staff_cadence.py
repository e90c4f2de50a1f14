"""The console's digest schedule page and the hold / send-now links of review emails, followed from the caught email."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.content.importer import import_text
from mailer.digests import cadence
from mailer.extensions import db
from mailer.models import AuditEntry, Digest, DigestSchedule, StaffUser
from mailer.tokens import make_token
from tests.conftest import AuthActions, CaughtMail, csrf_token
from tests.data import digest_content

#: A Wednesday; "weekly mon 09:00" then first runs on Monday 11 January 2027, 09:00 CET (08:00 UTC).
SET_ON = datetime(2027, 1, 6, 12, 0, tzinfo=UTC)
ALL_ONE = {"meetings": 1, "projects": 1, "news": 1}
REVIEW_LINK = re.compile(r"https?://\S+(/staff/review/[A-Za-z0-9._-]+)")
GOOD_FORM = {
    "frequency": "weekly",
    "weekday": "mon",
    "every": "2",
    "day": "1",
    "ordinal": "first",
    "at": "09:00",
    "review_hours": "24",
    "min_meetings": "1",
    "min_projects": "1",
    "min_news": "3",
}


@pytest.fixture
def staff(app: Flask, auth: AuthActions) -> FlaskClient:
    """A signed-in editor, Berlin time, and content for a digest."""
    app.config["ORG_TIMEZONE"] = "Europe/Berlin"
    with app.app_context():
        import_text(json.dumps(digest_content()))
    return auth.login()


def _schedule_row(app: Flask) -> tuple[object, ...] | None:
    """Everything about the schedule that a refused request must leave alone."""
    with app.app_context():
        schedule = cadence.get_schedule()
        if schedule is None:
            return None
        return (schedule.rule, schedule.anchor, schedule.review_minutes, schedule.min_items, schedule.active,
                schedule.next_run_at, schedule.held_for, schedule.held_by)  # fmt: skip


def _post(auth: AuthActions, path: str, data: dict[str, str]) -> tuple[int, str]:
    """POST a console form; return the status and the page."""
    response = auth.post(path, data)
    return response.status_code, response.get_data(as_text=True)


def test_pages_need_sign_in(client: FlaskClient) -> None:
    """Visitors are sent to sign in; a forged POST changes nothing."""
    assert client.get("/staff/schedule/").status_code == 302
    assert client.post("/staff/schedule/", data=GOOD_FORM).status_code in (302, 400)


def test_console_sets_shows_holds_and_switches_off(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """Set from the form, read back in ORG_TIMEZONE, hold and release the next run, switch off; all audited."""
    page = staff.get("/staff/schedule/").get_data(as_text=True)
    assert "No schedule is on" in page
    assert "Europe/Berlin" in page
    response = auth.post("/staff/schedule/", GOOD_FORM)
    assert response.status_code == 303
    with app.app_context():
        schedule = cadence.get_schedule()
        assert (schedule.rule, schedule.review_minutes, schedule.min_items) == (
            "weekly mon 09:00",
            1440,
            {"meetings": 1, "projects": 1, "news": 3},
        )
        run_at, shown = schedule.next_run_at, schedule.next_run_at.astimezone(cadence.org_zone())
    page = staff.get("/staff/schedule/").get_data(as_text=True)
    assert "every Monday at 09:00" in page
    assert "24 hours before" in page
    assert shown.strftime("%-d %B %Y 09:00 %Z") in page
    assert "Meetings: 1 · Projects: 1 · News: 3" in page
    run = str(int(run_at.timestamp()))
    assert auth.post("/staff/schedule/hold", {"run": run}).status_code == 303
    assert "held by editor@example.org" in staff.get("/staff/schedule/").get_data(as_text=True)
    status, page = _post(auth, "/staff/schedule/hold", {"run": run})
    assert status == 409
    assert "already held" in page
    assert auth.post("/staff/schedule/release", {"run": run}).status_code == 303
    with app.app_context():
        assert cadence.get_schedule().held_for is None
    assert auth.post("/staff/schedule/off", {}).status_code == 303
    assert "No schedule is on" in staff.get("/staff/schedule/").get_data(as_text=True)
    with app.app_context():
        actions = db.session.execute(db.select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id)).all()
    ours = [a for a in actions if a[1].startswith("cadence.")]
    assert ours == [("editor@example.org", f"cadence.{n}") for n in ("set", "hold", "release", "off")]


@pytest.mark.parametrize(
    ("rule", "fields"),
    [
        ("daily 07:30", {"frequency": "daily", "at": "07:30", "review_hours": "0.5"}),
        ("every 3 weeks fri 16:00", {"frequency": "weeks", "every": "3", "weekday": "fri", "at": "16:00"}),
        ("monthly 15 09:00", {"frequency": "monthday", "day": "15"}),
        ("monthly last fri 09:00", {"frequency": "monthweekday", "ordinal": "last", "weekday": "fri"}),
    ],
)
def test_console_frequencies(app: Flask, staff: FlaskClient, auth: AuthActions, rule: str, fields: dict) -> None:
    """Each frequency of the form makes its rule; the page shows it filled in again."""
    assert auth.post("/staff/schedule/", {**GOOD_FORM, **fields}).status_code == 303
    with app.app_context():
        assert cadence.get_schedule().rule == rule
    page = staff.get("/staff/schedule/").get_data(as_text=True)
    assert f'value="{fields["frequency"]}" selected' in page or f'selected value="{fields["frequency"]}"' in page


#: Bad values for the schedule form, each with what the page says about it.
BAD_VALUES = [
    ({"frequency": "hourly"}, "Not a valid choice"),
    ({"weekday": "funday"}, "Not a valid choice"),
    ({"every": "9"}, "Not a valid choice"),
    ({"ordinal": "fifth"}, "Not a valid choice"),
    ({"at": "25:00"}, "Not a valid time"),
    ({"at": ""}, "Enter a time such as 09:00."),
    ({"at": "09:00\r\nBcc: x@example.org"}, "Not a valid time"),
    ({"frequency": "monthday", "day": "29"}, "between 1 and 28"),
    ({"frequency": "monthday", "day": ""}, "Enter the day of the month"),
    ({"day": "x" * 10000}, "Not a valid integer"),
    ({"review_hours": "-1"}, "between 0 and 168"),
    ({"review_hours": "169"}, "between 0 and 168"),
    ({"review_hours": "NaN"}, "Enter a number of hours"),
    ({"review_hours": "Infinity"}, "Enter a number of hours"),
    ({"review_hours": "0.3333"}, "whole minutes"),
    ({"review_hours": "1e999999"}, "between 0 and 168"),
    ({"review_hours": "<script>alert(1)</script>"}, "Not a valid decimal"),
    ({"min_news": "0"}, "between 1 and 999"),
    ({"min_news": "9" * 5000}, "Not a valid integer"),
    ({"min_meetings": ""}, "Enter a number from 1 to 999."),
    ({"frequency": "daily", "review_hours": "24"}, "shorter than the time between two runs"),
]


def test_console_refuses_bad_values(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """Each bad value is a form error in words (400) and the schedule stays as it was (one app, every case)."""
    assert auth.post("/staff/schedule/", {**GOOD_FORM, "at": "06:00"}).status_code == 303
    before = _schedule_row(app)
    for fields, says in BAD_VALUES:
        status, page = _post(auth, "/staff/schedule/", {**GOOD_FORM, **fields})
        assert status == 400, fields
        assert says in page, fields
        assert "<script>alert(1)</script>" not in page, fields
        assert _schedule_row(app) == before, fields


def test_console_forms_need_their_csrf_token(app: Flask, staff: FlaskClient) -> None:
    """Without the token nothing is set, held or switched off."""
    assert staff.post("/staff/schedule/", data=GOOD_FORM).status_code == 400
    assert staff.post("/staff/schedule/off").status_code == 400
    assert staff.post("/staff/schedule/hold", data={"run": "1"}).status_code == 400
    assert _schedule_row(app) is None


def test_hold_of_a_run_that_is_not_next_changes_nothing(app: Flask, staff: FlaskClient, auth: AuthActions) -> None:
    """A malformed run is a 400; a run that is not the next one (stale page) is a 410; nothing changes."""
    assert auth.post("/staff/schedule/", GOOD_FORM).status_code == 303
    before = _schedule_row(app)
    for run in ("", "abc", "1" * 12, "-5", "99999999999", "1799999999"):
        for action in ("hold", "release"):
            status, page = _post(auth, f"/staff/schedule/{action}", {"run": run})
            assert status == (410 if run.isdigit() and len(run) <= 11 else 400), (run, action)
            assert "Please reload the page" in page or "this digest run is over" in page.lower(), (run, action)
    assert _schedule_row(app) == before


# The links of a review email.


def _reviewed(app: Flask, auth: AuthActions, mailbox: CaughtMail, review_minutes: int = 60) -> datetime:
    """Berlin time, content, a weekly schedule with a review window, ticked at the window's start; return the run."""
    app.config["ORG_TIMEZONE"] = "Europe/Berlin"
    auth.create("ann@example.org")
    with app.app_context():
        import_text(json.dumps(digest_content()))
        run_at = cadence.set_schedule("weekly mon 09:00", review_minutes, ALL_ONE, "cli", now=SET_ON).next_run_at
        cadence.tick(run_at - timedelta(minutes=review_minutes))
    mailbox.wait_for(1)
    return run_at


def _links(message: EmailMessage) -> dict[str, str]:
    """The hold and send-now paths in a review email's text, checked against its HTML."""
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    found = REVIEW_LINK.findall(text)
    assert len(found) == 2
    assert all(path in html for path in found)
    hold_at, send_at = text.index("Hold this digest"), text.index("Send it now")
    return {"hold": found[0 if hold_at < send_at else 1], "send": found[1 if hold_at < send_at else 0]}


def _follow(client: FlaskClient, path: str) -> tuple[int, str]:
    """Open a link (GET), then press its button (POST with the page's CSRF token)."""
    page = client.get(path)
    assert page.status_code == 200
    response = client.post(path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    return response.status_code, response.get_data(as_text=True)


def test_hold_link_from_the_email(app: Flask, client: FlaskClient, auth: AuthActions, mailbox: CaughtMail) -> None:
    """GET shows the digest and a button and changes nothing; POST holds, as its staff member; a replay is refused."""
    run_at = _reviewed(app, auth, mailbox)
    (message,) = mailbox.to("ann@example.org")
    links = _links(message)
    page = client.get(links["hold"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Hold this digest" in text
    assert "11 January 2027 09:00 CET" in text
    assert "2 meetings, 1 news item" in text
    with app.app_context():
        assert cadence.get_schedule().held_for is None
    status, text = _follow(client, links["hold"])
    assert status == 200
    assert "Held: this digest run will not go out" in text
    with app.app_context():
        schedule = cadence.get_schedule()
        assert (schedule.held_for, schedule.held_by) == (run_at, "ann@example.org")
        assert (
            db.session.execute(db.select(AuditEntry.actor).where(AuditEntry.action == "cadence.hold")).scalar_one()
            == "ann@example.org"
        )
    token = csrf_token(client.get(links["send"]).get_data(as_text=True))
    replay = client.post(links["hold"], data={"csrf_token": token})
    assert replay.status_code == 409
    assert "already held" in replay.get_data(as_text=True)
    # Send now is refused while the run is held.
    refused = client.post(links["send"], data={"csrf_token": token})
    assert refused.status_code == 409
    with app.app_context():
        assert cadence.tick(run_at) == "held by ann@example.org"
    # The run is over: its links say so.
    gone = client.get(links["hold"])
    assert gone.status_code == 410
    assert "over" in gone.get_data(as_text=True)
    assert client.post(links["send"], data={"csrf_token": token}).status_code == 410
    with app.app_context():
        assert not db.session.execute(db.select(Digest)).first()


def test_send_now_link_from_the_email(app: Flask, client: FlaskClient, auth: AuthActions, mailbox: CaughtMail) -> None:
    """POST creates the digest at once and ends the run: the run time sends nothing more; a replay is 410."""
    run_at = _reviewed(app, auth, mailbox)
    links = _links(mailbox.to("ann@example.org")[0])
    page = client.get(links["send"]).get_data(as_text=True)
    assert "Send it now" in page
    with app.app_context():
        assert not db.session.execute(db.select(Digest)).first()
    status, text = _follow(client, links["send"])
    assert status == 200
    assert "Sent digest 1" in text
    with app.app_context():
        assert cadence.get_schedule().next_run_at == run_at + timedelta(days=7)
        assert cadence.tick(run_at) is None
        assert db.session.execute(db.select(db.func.count(Digest.id))).scalar_one() == 1
        audit = db.session.execute(db.select(AuditEntry.actor).where(AuditEntry.action == "digest.create")).scalar_one()
    assert audit == "ann@example.org"
    token = csrf_token(client.get("/subscribe").get_data(as_text=True))
    replay = client.post(links["send"], data={"csrf_token": token})
    assert replay.status_code == 410
    assert client.post(links["hold"], data={"csrf_token": token}).status_code == 410


def test_the_link_post_needs_the_pages_token(app: Flask, client: FlaskClient, auth: AuthActions,
                                             mailbox: CaughtMail) -> None:  # fmt: skip
    """A POST without the CSRF token of the page (a scanner, another site) is a 400 and holds nothing."""
    _reviewed(app, auth, mailbox)
    links = _links(mailbox.messages[0])
    assert client.post(links["hold"]).status_code == 400
    with app.app_context():
        assert cadence.get_schedule().held_for is None


def test_bad_review_links(app: Flask, client: FlaskClient, auth: AuthActions, mailbox: CaughtMail) -> None:
    """Tampered, foreign-purpose, oversized or malformed tokens are 404; a switched-off account's link is 403."""
    run_at = _reviewed(app, auth, mailbox)
    good = _links(mailbox.messages[0])["hold"]
    with app.app_context():
        other_purpose = make_token("manage", [1, int(run_at.timestamp()), "hold"])
        bad_shape = make_token("cadence", {"staff": 1})
        bad_action = make_token("cadence", [1, int(run_at.timestamp()), "delete"])
        huge_id = make_token("cadence", [2**40 - 1, int(run_at.timestamp()), "hold"])
        ann = db.session.execute(db.select(StaffUser.id).where(StaffUser.email == "ann@example.org")).scalar_one()
    for path in (
        good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"),
        "/staff/review/" + other_purpose,
        "/staff/review/" + bad_shape,
        "/staff/review/" + bad_action,
        "/staff/review/" + huge_id,
        "/staff/review/" + "x" * 600,
        "/staff/review/%00",
    ):
        assert client.get(path).status_code == 404, path
        assert client.post(path).status_code in (400, 404)
    with app.app_context():
        db.session.execute(db.update(StaffUser).where(StaffUser.id == ann).values(active=False))
        db.session.commit()
    assert client.get(good).status_code == 403
    assert _schedule_row(app)[6] is None  # nothing held


def test_console_shows_last_outcome_and_the_late_review(app: Flask, staff: FlaskClient, mailbox: CaughtMail) -> None:
    """After a run, the page says what it did; a run moved by a late review says so."""
    with app.app_context():
        run_at = cadence.set_schedule("weekly mon 09:00", 60, ALL_ONE, "cli", now=SET_ON).next_run_at
        cadence.tick(run_at + timedelta(minutes=5))
    page = staff.get("/staff/schedule/").get_data(as_text=True)
    assert "moved: its review email went out late" in page
    with app.app_context():
        cadence.tick(run_at + timedelta(minutes=65))
        outcome = db.session.execute(db.select(DigestSchedule.last_outcome)).scalar_one()
    assert outcome.startswith("sent digest 1")
    assert "sent digest 1" in staff.get("/staff/schedule/").get_data(as_text=True)
    assert [str(m["To"]) for m in mailbox.messages] == ["editor@example.org"]
