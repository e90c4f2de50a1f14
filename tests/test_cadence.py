"""The digest cadence: rules, next runs across clock changes, the beat tick (review, hold, skip, catch-up), the CLI."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from mailer.content.importer import import_text
from mailer.digests import cadence
from mailer.extensions import db
from mailer.models import AuditEntry, Digest, DigestSchedule
from tests.conftest import CaughtMail, wait_until
from tests.data import digest_content, meeting, news_item

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
#: A Wednesday: "weekly mon 09:00" set then first runs on Monday 11 January 2027, 08:00 UTC (CET).
SET_ON = datetime(2027, 1, 6, 12, 0, tzinfo=UTC)
FIRST_RUN = datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
ALL_ONE = {"meetings": 1, "projects": 1, "news": 1}


def _utc(*args: int) -> datetime:
    """An aware UTC datetime."""
    return datetime(*args, tzinfo=UTC)


def _next(rule: str, after: datetime, tz: ZoneInfo = BERLIN, anchor: date = date(2027, 1, 6)) -> datetime:
    """The next run of ``rule`` after ``after``."""
    return cadence.next_run(cadence.parse_rule(rule), anchor, after, tz)


def _runs(rule: str, after: datetime, count: int, tz: ZoneInfo = BERLIN, anchor: date = date(2027, 1, 6)) -> list:
    """The next ``count`` runs of ``rule`` after ``after``."""
    found = []
    for _ in range(count):
        after = _next(rule, after, tz, anchor)
        found.append(after)
    return found


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("daily 9:00", "daily 09:00"),
        ("  Weekly   MONDAY 09:00 ", "weekly mon 09:00"),
        ("every 2 weeks fri 17:30", "every 2 weeks fri 17:30"),
        ("every 8 weeks sun 00:00", "every 8 weeks sun 00:00"),
        ("monthly 28 23:59", "monthly 28 23:59"),
        ("monthly first tue 09:00", "monthly first tue 09:00"),
        ("monthly LAST Friday 16:00", "monthly last fri 16:00"),
    ],
)
def test_rules_are_read_and_normalised(text: str, normal: str) -> None:
    """Any case and spacing, full or short day names; the stored form is one normal spelling."""
    assert str(cadence.parse_rule(text)) == normal
    assert str(cadence.parse_rule(normal)) == normal


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("hourly", "not a schedule mailer knows"),
        ("weekly 09:00", "not a schedule mailer knows"),
        ("weekly funday 09:00", "not a day of the week"),
        ("daily 24:00", "not a time of day"),
        ("daily 09:60", "not a time of day"),
        ("every 1 weeks mon 09:00", "from 2 to 8"),
        ("every 9 weeks mon 09:00", "from 2 to 8"),
        ("monthly 29 09:00", "1 to 28"),
        ("monthly 0 09:00", "1 to 28"),
        ("monthly fifth mon 09:00", "which week of the month"),
        ("weekly mon 09:00\nBcc: x@example.org", "one short line"),
        ("daily 09:00" + " " * 100, "one short line"),
        ("", "not a schedule"),
    ],
)
def test_rules_that_mean_nothing_are_refused(text: str, says: str) -> None:
    """Each refusal says what is wrong in words."""
    with pytest.raises(cadence.CadenceError, match=says):
        cadence.parse_rule(text)


def test_weekly_run_keeps_its_local_time_across_spring_forward() -> None:
    """09:00 in Berlin is 08:00 UTC before the clocks go forward (28 March 2027) and 07:00 UTC after."""
    assert _runs("weekly mon 09:00", _utc(2027, 3, 20), 2) == [_utc(2027, 3, 22, 8), _utc(2027, 3, 29, 7)]
    # And back again after the clocks go back (31 October 2027).
    assert _runs("weekly mon 09:00", _utc(2027, 10, 24), 2) == [_utc(2027, 10, 25, 7), _utc(2027, 11, 1, 8)]


def test_a_time_the_clocks_skip_moves_on_by_the_gap() -> None:
    """02:30 on 28 March 2027 does not exist in Berlin: that day's run is at 03:30 CEST (01:30 UTC)."""
    assert _runs("daily 02:30", _utc(2027, 3, 27, 12), 2) == [_utc(2027, 3, 28, 1, 30), _utc(2027, 3, 29, 0, 30)]
    assert _utc(2027, 3, 28, 1, 30).astimezone(BERLIN).strftime("%H:%M %Z") == "03:30 CEST"


def test_a_time_the_clocks_repeat_goes_out_the_first_time() -> None:
    """02:30 on 31 October 2027 happens twice in Berlin: the run is the first (CEST, 00:30 UTC), once."""
    runs = _runs("daily 02:30", _utc(2027, 10, 30, 12), 2)
    assert runs == [_utc(2027, 10, 31, 0, 30), _utc(2027, 11, 1, 1, 30)]
    # Asked just after the first 02:30, the second 02:30 is not another run.
    assert _next("daily 02:30", _utc(2027, 10, 31, 0, 30)) == _utc(2027, 11, 1, 1, 30)


def test_new_york_clock_changes() -> None:
    """New York: 09:00 is 14:00 UTC in winter, 13:00 in summer; 02:30 skipped in March; 01:30 twice in November."""
    assert _runs("daily 09:00", _utc(2027, 3, 13), 2, NEW_YORK) == [_utc(2027, 3, 13, 14), _utc(2027, 3, 14, 13)]
    assert _next("weekly sun 02:30", _utc(2027, 3, 13), NEW_YORK) == _utc(2027, 3, 14, 7, 30)  # 03:30 EDT
    assert _next("weekly sun 01:30", _utc(2027, 11, 6), NEW_YORK) == _utc(2027, 11, 7, 5, 30)  # the EDT one


def test_every_two_weeks_counts_from_the_day_it_was_set() -> None:
    """Set on Wednesday 6 January 2027: the first Monday on or after it, then every other Monday."""
    runs = _runs("every 2 weeks mon 09:00", SET_ON, 3)
    assert runs == [_utc(2027, 1, 11, 8), _utc(2027, 1, 25, 8), _utc(2027, 2, 8, 8)]
    # Set on another week, the other Mondays.
    assert _next("every 2 weeks mon 09:00", SET_ON, anchor=date(2027, 1, 13)) == _utc(2027, 1, 18, 8)
    assert [r.date() for r in _runs("every 3 weeks fri 10:00", SET_ON, 2)] == [date(2027, 1, 8), date(2027, 1, 29)]


def test_monthly_rules() -> None:
    """First Tuesday, last Friday (across the year end) and a day of the month."""
    first_tuesdays = [r.date() for r in _runs("monthly first tue 09:00", _utc(2027, 1, 1), 3)]
    assert first_tuesdays == [date(2027, 1, 5), date(2027, 2, 2), date(2027, 3, 2)]
    last_fridays = [r.date() for r in _runs("monthly last fri 09:00", _utc(2027, 11, 1), 3)]
    assert last_fridays == [date(2027, 11, 26), date(2027, 12, 31), date(2028, 1, 28)]
    assert [r.date() for r in _runs("monthly second wed 09:00", _utc(2027, 1, 1), 2)] == [
        date(2027, 1, 13),
        date(2027, 2, 10),
    ]
    # Strictly after: a run exactly at `after` is not next.
    assert _runs("monthly 15 12:00", _utc(2027, 1, 15, 11), 2) == [_utc(2027, 2, 15, 11), _utc(2027, 3, 15, 11)]


def test_review_windows_and_minimums_are_read() -> None:
    """``30m``/``24h``/``2d``/``0`` and ``N`` or ``topic=N,...``; anything else is refused."""
    assert [cadence.parse_review(t) for t in ("0", "30m", "24h", "2d", "7d")] == [0, 30, 1440, 2880, 10080]
    for bad in ("5", "8d", "-1h", "1w", "24 hours", "1" * 50):
        with pytest.raises(cadence.CadenceError):
            cadence.parse_review(bad)
    assert cadence.parse_min_items("2") == {"meetings": 2, "projects": 2, "news": 2}
    assert cadence.parse_min_items("news=3,meetings=1") == {"meetings": 1, "projects": 1, "news": 3}
    for bad in ("0", "news=0", "news=1000", "weather=1", "news", "news=3,,", "news=-1", "x" * 500):
        with pytest.raises(cadence.CadenceError):
            cadence.parse_min_items(bad)


# The tick, on both databases.


def _setup(app: Flask, content: dict | None = None, staff: tuple[str, ...] = ("ann@example.org",)) -> None:
    """Berlin time, content for a digest (``digest_content`` unless given) and active staff accounts."""
    from mailer.staff.service import create_staff

    app.config["ORG_TIMEZONE"] = "Europe/Berlin"
    with app.app_context():
        if content is None or content:
            import_text(json.dumps(content or digest_content()))
        for email in staff:
            create_staff(email, "correct horse battery", role="editor")


def _schedule(app: Flask, rule: str = "weekly mon 09:00", review: int = 0, min_items: dict | None = None) -> datetime:
    """Set the schedule on SET_ON; return its first run."""
    with app.app_context():
        return cadence.set_schedule(rule, review, min_items or ALL_ONE, actor="cli", now=SET_ON).next_run_at


def _tick(app: Flask, now: datetime) -> str | None:
    """One beat tick at ``now``."""
    with app.app_context():
        return cadence.tick(now)


def _state(app: Flask) -> DigestSchedule:
    """The schedule row, detached for reading."""
    with app.app_context():
        schedule = cadence.get_schedule()
        db.session.expunge(schedule)
        return schedule


def _digests(app: Flask) -> list[Digest]:
    """Every real (non-test) digest."""
    with app.app_context():
        return list(db.session.execute(db.select(Digest).where(Digest.is_test.is_(False))).scalars())


def test_a_run_sends_a_digest_and_schedules_the_next(app: Flask, mailbox: CaughtMail) -> None:
    """Nothing before the run time; at it one digest (actor "cadence"), and the next run is a week on."""
    _setup(app)
    assert _schedule(app) == FIRST_RUN
    assert _tick(app, FIRST_RUN - timedelta(seconds=1)) is None
    assert not _digests(app)
    assert _tick(app, FIRST_RUN).startswith("sent digest 1")
    (digest,) = _digests(app)
    state = _state(app)
    assert state.next_run_at == FIRST_RUN + timedelta(days=7)
    assert state.last_run_at == FIRST_RUN
    assert state.last_outcome.startswith("sent digest 1 (scheduled for 11 January")
    assert _tick(app, FIRST_RUN + timedelta(minutes=1)) is None
    assert len(_digests(app)) == 1
    assert not mailbox.messages  # no review window: no review email
    with app.app_context():
        actors = db.session.execute(db.select(AuditEntry.actor, AuditEntry.action).order_by(AuditEntry.id)).all()
    assert ("cli", "cadence.set") in actors
    assert ("cadence", "digest.create") in actors


def test_catch_up_after_downtime_sends_one_digest(app: Flask) -> None:
    """Ten days after a missed weekly run (two runs missed), one tick sends exactly one digest; the next is ahead."""
    _setup(app)
    _schedule(app)
    now = FIRST_RUN + timedelta(days=10)
    assert _tick(app, now).startswith("sent digest")
    assert _state(app).next_run_at == _utc(2027, 1, 25, 8) > now
    with app.app_context():
        import_text(json.dumps({"news": [news_item(slug="later", title="Later news")]}))
    for minutes in range(1, 4):
        assert _tick(app, now + timedelta(minutes=minutes)) is None
    assert len(_digests(app)) == 1


def test_catch_up_with_a_review_window_waits_one_window(app: Flask, mailbox: CaughtMail) -> None:
    """Down over the review time and the run: the review goes out late, saying so, and the run waits a window."""
    _setup(app)
    _schedule(app, review=24 * 60)
    now = FIRST_RUN + timedelta(days=3)
    assert _tick(app, now) is None
    (review,) = mailbox.messages
    text = review.get_body(("plain",)).get_content()
    assert "could not send this review before" in text
    assert "goes out 15 January 2027 09:00 CET" in str(review["Subject"])
    assert _state(app).due_at == now + timedelta(hours=24)
    assert _tick(app, now + timedelta(hours=23, minutes=59)) is None
    assert not _digests(app)
    assert _tick(app, now + timedelta(hours=24)).startswith("sent digest")
    state = _state(app)
    assert state.due_at is None
    assert state.next_run_at == _utc(2027, 1, 18, 8)
    assert len(mailbox.messages) == 1


def test_review_goes_to_every_active_staff_member_once(app: Flask, mailbox: CaughtMail) -> None:
    """At run − window, each active admin and editor gets the preview once; later ticks send nothing more."""
    from mailer.staff.service import create_staff, set_active

    _setup(app, staff=("ann@example.org", "ben@example.org"))
    with app.app_context():
        admin = create_staff("root@example.org", "correct horse battery", role="admin")
        gone = create_staff("gone@example.org", "correct horse battery")
        set_active(gone, False, admin)
    run_at = _schedule(app, review=24 * 60)
    assert _tick(app, run_at - timedelta(hours=24, minutes=1)) is None
    assert not mailbox.messages
    _tick(app, run_at - timedelta(hours=24))
    assert sorted(str(m["To"]) for m in mailbox.messages) == ["ann@example.org", "ben@example.org", "root@example.org"]
    message = mailbox.messages[0]
    assert str(message["Subject"]).startswith("[Review] ")
    assert str(message["Subject"]).endswith("— goes out 11 January 2027 09:00 CET")
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "58th SMEWG Meeting" in text
    assert "58th SMEWG Meeting" in html
    assert "Hold this digest" in text
    assert "Send it now" in html
    assert "could not send this review before" not in text
    # The digest sits between its two markers, the review's own footer after them.
    digest_part = text[text.index("----- The digest") : text.index("----- End of the digest -----")]
    assert "58th SMEWG Meeting" in digest_part
    assert text.index("Hold this digest") < text.index("----- The digest")
    for hours in (23, 1, 0):
        _tick(app, run_at - timedelta(hours=hours, seconds=1))
    assert len(mailbox.messages) == 3
    assert _state(app).review_sent_for == run_at


def test_a_held_run_sends_nothing_and_the_next_is_scheduled(app: Flask, mailbox: CaughtMail) -> None:
    """Held from the CLI's side of things (the service): skipped with who held it, the hold gone for the next run."""
    _setup(app)
    run_at = _schedule(app, review=60)
    with app.app_context():
        cadence.hold(run_at, "ann@example.org")
        with pytest.raises(cadence.CadenceError, match="already held") as replay:
            cadence.hold(run_at, "ann@example.org")
        assert replay.value.status == 409
    _tick(app, run_at - timedelta(minutes=30))
    assert not mailbox.messages  # a held run needs no review
    assert _tick(app, run_at) == "held by ann@example.org"
    assert not _digests(app)
    state = _state(app)
    assert state.last_outcome == "held by ann@example.org"
    assert state.next_run_at == run_at + timedelta(days=7)
    assert state.held_for is None
    with app.app_context():
        with pytest.raises(cadence.CadenceError, match="over") as stale:
            cadence.hold(run_at, "ann@example.org")
        assert stale.value.status == 410
    # The next run is reviewed and sent as usual.
    _tick(app, run_at + timedelta(days=7, minutes=-60))
    assert len(mailbox.messages) == 1
    assert _tick(app, run_at + timedelta(days=7)).startswith("sent digest")


def test_a_released_hold_lets_the_run_go(app: Flask) -> None:
    """Hold then release: the run goes out; releasing a run that is not held is refused."""
    _setup(app)
    run_at = _schedule(app)
    with app.app_context():
        cadence.hold(run_at, "ann@example.org")
        cadence.release_hold(run_at, "ben@example.org")
        with pytest.raises(cadence.CadenceError, match="not held"):
            cadence.release_hold(run_at, "ben@example.org")
        actions = db.session.execute(db.select(AuditEntry.actor, AuditEntry.action)).all()
    assert ("ann@example.org", "cadence.hold") in actions
    assert ("ben@example.org", "cadence.release") in actions
    assert _tick(app, run_at).startswith("sent digest")


def test_send_now_makes_the_digest_and_the_run_does_not_send_again(app: Flask) -> None:
    """Send now: a digest at once, the run done; its time comes and nothing more is sent."""
    _setup(app)
    run_at = _schedule(app)
    with app.app_context():
        assert cadence.send_now(run_at, "ann@example.org").startswith("sent digest 1 (as ann@example.org asked)")
        with pytest.raises(cadence.CadenceError) as replay:
            cadence.send_now(run_at, "ann@example.org")
        assert replay.value.status == 410
    assert _state(app).next_run_at == run_at + timedelta(days=7)
    assert _tick(app, run_at) is None
    assert len(_digests(app)) == 1


def test_not_enough_new_items_sends_nothing_and_says_why(app: Flask, mailbox: CaughtMail) -> None:
    """Below every topic's minimum: no review, no digest, the outcome in words; the next run is scheduled."""
    _setup(app)
    run_at = _schedule(app, review=60, min_items={"meetings": 5, "news": 3})
    _tick(app, run_at - timedelta(minutes=30))
    assert not mailbox.messages
    assert _tick(app, run_at) == "skipped: only 2 meetings, 5 needed; 1 news item, 3 needed"
    assert not _digests(app)
    state = _state(app)
    assert state.last_outcome == "skipped: only 2 meetings, 5 needed; 1 news item, 3 needed"
    assert state.next_run_at == run_at + timedelta(days=7)


def test_topics_below_their_minimum_ride_along(app: Flask) -> None:
    """Meetings reach their minimum: the digest goes, with the one news item too."""
    _setup(app)
    run_at = _schedule(app, min_items={"meetings": 2, "news": 3})
    assert _tick(app, run_at).startswith("sent digest")
    (digest,) = _digests(app)
    assert set(digest.content) == {"meetings", "news"}


def test_nothing_new_is_recorded(app: Flask) -> None:
    """No content at all: "skipped: nothing new"."""
    _setup(app, content={})
    run_at = _schedule(app)
    assert _tick(app, run_at) == "skipped: nothing new"
    assert _state(app).last_outcome == "skipped: nothing new"


def test_two_ticks_at_once_make_one_review_and_one_digest(app: Flask, mailbox: CaughtMail) -> None:
    """Two beats (or workers) ticking together: each staff member gets one review, the run makes one digest."""
    _setup(app, staff=("ann@example.org", "ben@example.org"))
    run_at = _schedule(app, review=60)

    def together(now: datetime) -> list[str | None]:
        """Tick from two threads at the same moment; return what each did."""
        results: list[str | None] = []
        start = threading.Barrier(2)

        def one() -> None:
            """Wait for the other, then tick."""
            start.wait()
            results.append(_tick(app, now))

        threads = [threading.Thread(target=one) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        return results

    together(run_at - timedelta(minutes=60))
    assert sorted(str(m["To"]) for m in mailbox.messages) == ["ann@example.org", "ben@example.org"]
    results = together(run_at)
    assert results.count(None) == 1
    assert [r for r in results if r is not None][0].startswith("sent digest 1")
    assert len(_digests(app)) == 1
    assert len(mailbox.messages) == 2


def test_a_schedule_that_is_off_does_nothing(app: Flask) -> None:
    """Switched off: no run; setting the same rule again counts from that day."""
    _setup(app)
    run_at = _schedule(app)
    with app.app_context():
        assert cadence.turn_off("cli") is True
        assert cadence.turn_off("cli") is False
    assert _tick(app, run_at) is None
    assert not _digests(app)


def test_changing_only_the_window_keeps_the_run_and_its_hold(app: Flask) -> None:
    """The same rule with another review window or minimum: same next run, same hold."""
    _setup(app)
    run_at = _schedule(app)
    with app.app_context():
        cadence.hold(run_at, "ann@example.org")
        cadence.set_schedule("Weekly Monday 09:00", 120, {"news": 2}, actor="cli", now=SET_ON + timedelta(days=1))
    state = _state(app)
    assert (state.next_run_at, state.held_for, state.review_minutes) == (run_at, run_at, 120)
    assert state.min_items == {"meetings": 1, "projects": 1, "news": 2}
    with app.app_context():
        cadence.set_schedule("daily 07:00", 0, ALL_ONE, actor="cli", now=SET_ON + timedelta(days=1))
    state = _state(app)
    assert state.next_run_at == _utc(2027, 1, 8, 6)
    assert state.held_for is None


def test_a_review_window_as_long_as_the_gap_is_refused(app: Flask) -> None:
    """A daily schedule cannot have a 24-hour review window (every run would be under review)."""
    with app.app_context(), pytest.raises(cadence.CadenceError, match="shorter than the time between two runs"):
        cadence.set_schedule("daily 09:00", 24 * 60, ALL_ONE, actor="cli")
    with app.app_context():
        assert cadence.get_schedule() is None


# The command line.


def test_cli_sets_shows_and_switches_off(app: Flask, runner: FlaskCliRunner) -> None:
    """``cadence set`` with a window and per-topic minimums, ``show`` in ORG_TIMEZONE and UTC, ``off``."""
    app.config["ORG_TIMEZONE"] = "Europe/Berlin"
    result = runner.invoke(args=["digest", "cadence", "show"])
    assert result.exit_code == 0
    assert "no digest schedule" in result.output
    result = runner.invoke(
        args=["digest", "cadence", "set", "weekly mon 09:00", "--review", "24h", "--min-items", "news=3,meetings=1"]
    )
    assert result.exit_code == 0, result.output
    assert "every Monday at 09:00" in result.output
    result = runner.invoke(args=["digest", "cadence", "show"])
    assert result.exit_code == 0
    lines = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    assert lines["rule"] == "weekly mon 09:00 (every Monday at 09:00, Europe/Berlin)"
    assert lines["next run"].endswith(" UTC)")
    assert "CET" in lines["next run"] or "CEST" in lines["next run"]
    assert lines["review"] == "24 hours"
    assert lines["min items"] == "meetings 1, projects 1, news 3"
    assert lines["held"] == "no"
    assert lines["last outcome"] == "none yet"
    result = runner.invoke(args=["digest", "cadence", "off"])
    assert result.exit_code == 0
    assert "off" in result.output
    assert "is off" in runner.invoke(args=["digest", "cadence", "show"]).output
    with app.app_context():
        off = db.session.execute(db.select(AuditEntry.actor).where(AuditEntry.action == "cadence.off")).scalar()
    assert off == "cli"


@pytest.mark.parametrize(
    "args",
    [
        ["hourly"],
        ["weekly mon 25:00"],
        ["weekly mon 09:00\r\nBcc: x@example.org"],
        ["x" * 5000],
        ["weekly mon 09:00", "--review", "5"],
        ["weekly mon 09:00", "--review", "9d"],
        ["weekly mon 09:00", "--review", "7d"],  # as long as the gap between runs
        ["weekly mon 09:00", "--min-items", "0"],
        ["weekly mon 09:00", "--min-items", "weather=1"],
        ["weekly mon 09:00", "--min-items", "news=3;DROP TABLE digests"],
    ],
)
def test_cli_refuses_bad_input_in_one_line(app: Flask, runner: FlaskCliRunner, args: list[str]) -> None:
    """Exit 2 with one line saying what is wrong; an existing schedule stays as it was."""
    assert runner.invoke(args=["digest", "cadence", "set", "daily 06:00"]).exit_code == 0
    before = _state(app)
    result = runner.invoke(args=["digest", "cadence", "set", *args])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ")
    after = _state(app)
    assert (after.rule, after.review_minutes, after.min_items, after.next_run_at) == (
        before.rule,
        before.review_minutes,
        before.min_items,
        before.next_run_at,
    )


def test_beat_task_runs_the_tick(app: Flask, celery_worker: object) -> None:
    """``mailer.digests.run_cadence`` on a real worker: a due run becomes a digest."""
    _setup(app, content={"meetings": [meeting()]})
    with app.app_context():
        cadence.set_schedule("daily 09:00", 0, ALL_ONE, actor="cli")
        # The run came due a minute ago (as if beat had been down over it).
        db.session.execute(db.update(DigestSchedule).values(next_run_at=datetime.now(UTC) - timedelta(minutes=1)))
        db.session.commit()
    app.extensions["celery"].send_task("mailer.digests.run_cadence")
    with app.app_context():

        def done() -> bool:
            """The run made its digest and recorded it."""
            db.session.rollback()
            return (cadence.get_schedule().last_outcome or "").startswith("sent digest 1")

        wait_until(done, timeout=30)
        assert db.session.execute(db.select(db.func.count(Digest.id))).scalar_one() == 1
    assert _state(app).next_run_at > datetime.now(UTC)
