"""The automatic digest cadence: its rule, the next run, the review window, and the tick beat runs.

A rule is a local wall-clock time in ORG_TIMEZONE (``weekly mon 09:00``). The schedule row
(``DigestSchedule``, one at most) keeps the next run; beat's tick every minute emails editors
a review copy a window before it, then runs it: held, skipped (not enough new), or a digest.
Every change of the row that two processes might race on is a conditional UPDATE on the run
it is about (``next_run_at``), so a run is reviewed once and done once, however many ticks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import or_

from .. import mail
from ..extensions import db
from ..models import AuditEntry, DigestSchedule, StaffUser, Topic, utcnow
from ..tokens import TokenInvalid, make_token, read_token
from .compose import NOUNS, NextDigest, compose_next, preview
from .service import DigestError, create_digest

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ORDINALS = ("first", "second", "third", "fourth", "last")
#: The longest review window: a week.
MAX_REVIEW_MINUTES = 7 * 24 * 60
#: The most new items a topic can be asked to wait for.
MAX_MIN_ITEMS = 999
#: The rules staff can write, as examples for error messages.
RULE_EXAMPLES = "daily 09:00, weekly mon 09:00, every 2 weeks mon 09:00, monthly 1 09:00, monthly first tue 09:00"
#: Review links work no longer than this even while their run is still ahead (the run check is the real limit).
REVIEW_LINK_MAX_AGE = 70 * 24 * 3600
#: Where a review link points (the routes in mailer/staff/cadence.py), under BASE_URL.
REVIEW_PATH = "/staff/review/"
REVIEW_ACTIONS = ("hold", "send")


class CadenceError(ValueError):
    """A schedule, hold or link that cannot be used; the message says why in plain words."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Rule:
    """A parsed rule: how often (``kind``), at what local time, and on which day."""

    kind: str  # daily, weekly, weeks, monthday, monthweekday
    at: time
    weekday: int | None = None
    every: int = 1
    day: int | None = None
    ordinal: str | None = None

    def __str__(self) -> str:
        """The rule in its normal written form, the one stored (``every 2 weeks mon 09:00``)."""
        clock = self.at.strftime("%H:%M")
        day = DAYS[self.weekday] if self.weekday is not None else ""
        return {
            "daily": f"daily {clock}",
            "weekly": f"weekly {day} {clock}",
            "weeks": f"every {self.every} weeks {day} {clock}",
            "monthday": f"monthly {self.day} {clock}",
            "monthweekday": f"monthly {self.ordinal} {day} {clock}",
        }[self.kind]

    def describe(self) -> str:
        """The rule in words for people: ``every Monday at 09:00``."""
        clock = self.at.strftime("%H:%M")
        day = DAY_NAMES[self.weekday] if self.weekday is not None else ""
        return {
            "daily": f"every day at {clock}",
            "weekly": f"every {day} at {clock}",
            "weeks": f"every {self.every} weeks on {day} at {clock}",
            "monthday": f"every month on day {self.day} at {clock}",
            "monthweekday": f"every month on the {self.ordinal} {day} at {clock}",
        }[self.kind]

    @property
    def shortest_gap(self) -> timedelta:
        """The least time between two runs (a review window must be shorter)."""
        return {"daily": timedelta(days=1), "weekly": timedelta(days=7), "weeks": timedelta(days=7 * self.every)}.get(
            self.kind, timedelta(days=28)
        )


_CLOCK = r"(?P<h>\d{1,2}):(?P<m>\d{2})"
_DAY = r"(?P<day>[a-z]+)"
_PATTERNS = {
    "daily": re.compile(rf"daily {_CLOCK}"),
    "weekly": re.compile(rf"weekly {_DAY} {_CLOCK}"),
    "weeks": re.compile(rf"every (?P<n>\d{{1,2}}) weeks {_DAY} {_CLOCK}"),
    "monthday": re.compile(rf"monthly (?P<d>\d{{1,2}}) {_CLOCK}"),
    "monthweekday": re.compile(rf"monthly (?P<ord>[a-z]+) {_DAY} {_CLOCK}"),
}


def parse_rule(text: str) -> Rule:
    """Read a rule (any case, any spacing); CadenceError naming what is wrong."""
    if not isinstance(text, str) or len(text) > 80 or not text.isprintable():
        raise CadenceError(f"a schedule is one short line, such as: {RULE_EXAMPLES}")
    words = " ".join(text.lower().split())
    for kind, pattern in _PATTERNS.items():
        found = pattern.fullmatch(words)
        if found:
            return _rule(kind, found.groupdict())
    raise CadenceError(f"not a schedule mailer knows: {text.strip()!r}; write one such as: {RULE_EXAMPLES}")


def _rule(kind: str, parts: dict[str, str]) -> Rule:
    """Check the parts a pattern matched and make the rule."""
    hour, minute = int(parts["h"]), int(parts["m"])
    if hour > 23 or minute > 59:
        raise CadenceError(f"{parts['h']}:{parts['m']} is not a time of day: use 00:00 to 23:59")
    rule = Rule(kind, time(hour, minute))
    if "day" in parts:
        rule = Rule(kind, rule.at, weekday=_weekday(parts["day"]))
    if kind == "weeks":
        every = int(parts["n"])
        if not 2 <= every <= 8:
            raise CadenceError("every N weeks takes N from 2 to 8 (use weekly for every week)")
        rule = Rule(kind, rule.at, weekday=rule.weekday, every=every)
    if kind == "monthday":
        day = int(parts["d"])
        if not 1 <= day <= 28:
            raise CadenceError("a day of the month must be 1 to 28 (every month has those), or say 'last fri'")
        rule = Rule(kind, rule.at, day=day)
    if kind == "monthweekday":
        if parts["ord"] not in ORDINALS:
            raise CadenceError(f"which week of the month: {', '.join(ORDINALS)} (not {parts['ord']!r})")
        rule = Rule(kind, rule.at, weekday=rule.weekday, ordinal=parts["ord"])
    return rule


def _weekday(word: str) -> int:
    """0 for ``mon`` or ``monday`` ... 6 for ``sun``; CadenceError for anything else."""
    for number, name in enumerate(DAY_NAMES):
        if word in (DAYS[number], name.lower()):
            return number
    raise CadenceError(f"not a day of the week: {word!r}; use mon, tue, wed, thu, fri, sat or sun")


def _runs_on(rule: Rule, day: date, anchor: date) -> bool:
    """Whether ``rule`` has a run on the local date ``day``."""
    if rule.weekday is not None and day.weekday() != rule.weekday:
        return False
    if rule.kind == "weeks":
        first = anchor + timedelta(days=(rule.weekday - anchor.weekday()) % 7)  # type: ignore[operator]
        return (day - first).days % (7 * rule.every) == 0
    if rule.kind == "monthday":
        return day.day == rule.day
    if rule.kind == "monthweekday":
        if rule.ordinal == "last":
            return (day + timedelta(days=7)).month != day.month
        return (day.day - 1) // 7 == ORDINALS.index(rule.ordinal)  # type: ignore[arg-type]
    return True


def wall_clock(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC moment of a local time: one a clock change skips moves on by the gap, a repeated one is its first."""
    # fold=0 reads a skipped time with the offset before the change (02:30 becomes 03:30 summer
    # time) and a repeated one as its first occurrence (PEP 495).
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


def next_run(rule: Rule, anchor: date, after: datetime, tz: ZoneInfo) -> datetime:
    """The first run of ``rule`` strictly after ``after``, as an aware UTC time."""
    day = after.astimezone(tz).date() - timedelta(days=1)
    for _ in range(7 * 8 + 40):
        if _runs_on(rule, day, anchor):
            moment = wall_clock(day, rule.at, tz)
            if moment > after:
                return moment
        day += timedelta(days=1)
    raise AssertionError(f"no run of {rule} within three months of {after}")


def parse_review(text: str) -> int:
    """``30m``, ``24h``, ``2d`` or ``0`` as minutes; CadenceError when it is none of those or over a week."""
    found = re.fullmatch(r"\s*(\d{1,5})\s*([mhd]?)\s*", text or "")
    if not found or (found.group(2) == "" and found.group(1).strip("0")):
        raise CadenceError(f"a review window is like 30m, 24h or 2d (0 for none), not {text!r}")
    minutes = int(found.group(1)) * {"": 0, "m": 1, "h": 60, "d": 1440}[found.group(2)]
    if minutes > MAX_REVIEW_MINUTES:
        raise CadenceError("a review window is at most 7 days")
    return minutes


def describe_review(minutes: int) -> str:
    """``24 hours``, ``1 hour 30 minutes``, ``none``: a review window in words."""
    if not minutes:
        return "none"
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days > 1 and not rest:
        return f"{days} days"
    hours += days * 24
    parts = [f"{hours} hour{'s' if hours != 1 else ''}"] if hours else []
    return " ".join(parts + ([f"{mins} minute{'s' if mins != 1 else ''}"] if mins else []))


def parse_min_items(text: str) -> dict[str, int]:
    """``1`` (every topic) or ``news=3,meetings=1`` (topics not named keep 1); CadenceError otherwise."""
    text = (text or "").strip()
    if re.fullmatch(r"\d{1,3}", text):
        return checked_min_items(dict.fromkeys(Topic.names(), int(text)))
    found: dict[str, Any] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not re.fullmatch(r"\d{1,3}", value.strip()):
            raise CadenceError(f"minimum items are a number or like news=3,meetings=1, not {text[:60]!r}")
        found[name.strip()] = int(value)
    return checked_min_items(found)


def checked_min_items(given: dict[str, Any]) -> dict[str, int]:
    """Every topic's minimum (1 when not given), each 1 to MAX_MIN_ITEMS; CadenceError for an unknown topic."""
    unknown = sorted(set(given) - set(Topic.names()))
    if unknown:
        raise CadenceError(f"unknown topic {unknown[0][:40]!r}: choose from {', '.join(Topic.names())}")
    result = dict.fromkeys(Topic.names(), 1)
    for name, value in given.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_MIN_ITEMS:
            raise CadenceError(f"the minimum for {name} must be 1 to {MAX_MIN_ITEMS} new items")
        result[name] = value
    return result


def describe_min_items(min_items: dict[str, int]) -> str:
    """``meetings 1, projects 1, news 3``."""
    return ", ".join(f"{topic} {min_items.get(topic, 1)}" for topic in Topic.names())


def org_zone() -> ZoneInfo:
    """The organisation's time zone (ORG_TIMEZONE), where every rule's wall-clock time is read."""
    return ZoneInfo(current_app.config["ORG_TIMEZONE"])


def get_schedule() -> DigestSchedule | None:
    """The schedule row, on or off, or None when none was ever set."""
    return db.session.execute(db.select(DigestSchedule).order_by(DigestSchedule.id).limit(1)).scalar_one_or_none()


def _audit(actor: str, action: str, detail: dict[str, Any]) -> None:
    """Add an audit entry about the schedule (the caller commits)."""
    db.session.add(AuditEntry(actor=actor, action=action, target="digest-schedule", detail=detail))


def set_schedule(
    rule_text: str, review_minutes: int, min_items: dict[str, int], actor: str, now: datetime | None = None
) -> DigestSchedule:
    """Set (or change) the schedule and commit; CadenceError for a bad rule, window or minimum.

    The same rule again keeps its anchor and its next run (a hold or a review already sent stays);
    a new rule is counted from today and its next run is the first after now.
    """
    now = now or utcnow()
    rule = parse_rule(rule_text)
    min_items = checked_min_items(min_items)
    if not isinstance(review_minutes, int) or not 0 <= review_minutes <= MAX_REVIEW_MINUTES:
        raise CadenceError("a review window is 0 (none) to 7 days")
    if timedelta(minutes=review_minutes) >= rule.shortest_gap:
        raise CadenceError(f"the review window must be shorter than the time between two runs ({rule.describe()})")
    schedule = get_schedule()
    if schedule is None:
        schedule = DigestSchedule(rule=str(rule), anchor=now.date())
        db.session.add(schedule)
    if not (schedule.active and schedule.rule == str(rule) and schedule.next_run_at is not None):
        tz = org_zone()
        schedule.rule, schedule.anchor, schedule.active = str(rule), now.astimezone(tz).date(), True
        schedule.next_run_at = next_run(rule, schedule.anchor, now, tz)
        schedule.due_at = schedule.held_for = schedule.held_by = schedule.review_sent_for = None
    schedule.review_minutes, schedule.min_items, schedule.updated_by = review_minutes, min_items, actor
    _audit(actor, "cadence.set", {"rule": str(rule), "review_minutes": review_minutes, "min_items": min_items})
    db.session.commit()
    return schedule


def turn_off(actor: str) -> bool:
    """Switch the schedule off and commit; False when there was none on (nothing changes then)."""
    changed = db.session.execute(
        db.update(DigestSchedule).where(DigestSchedule.active.is_(True)).values(active=False, updated_by=actor)
    )
    if changed.rowcount == 0:
        db.session.rollback()
        return False
    _audit(actor, "cadence.off", {})
    db.session.commit()
    return True


def _this_run(run_at: datetime) -> Any:
    """The WHERE clause of a change about the run at ``run_at``: the schedule is on and that run is still ahead."""
    return (DigestSchedule.active.is_(True)) & (DigestSchedule.next_run_at == run_at)


def hold(run_at: datetime, actor: str) -> None:
    """Hold the run at ``run_at`` (it will not send) and commit; CadenceError 409/410 when that cannot be."""
    held = db.session.execute(
        db.update(DigestSchedule)
        .where(_this_run(run_at), or_(DigestSchedule.held_for.is_(None), DigestSchedule.held_for != run_at))
        .values(held_for=run_at, held_by=actor)
    )
    if held.rowcount != 1:
        db.session.rollback()
        raise _stale(run_at, "hold")
    _audit(actor, "cadence.hold", {"run_at": run_at.isoformat()})
    db.session.commit()


def release_hold(run_at: datetime, actor: str) -> None:
    """Let the held run at ``run_at`` go out after all, and commit; CadenceError when it is not held."""
    released = db.session.execute(
        db.update(DigestSchedule)
        .where(_this_run(run_at), DigestSchedule.held_for == run_at)
        .values(held_for=None, held_by=None)
    )
    if released.rowcount != 1:
        db.session.rollback()
        raise _stale(run_at, "release")
    _audit(actor, "cadence.release", {"run_at": run_at.isoformat()})
    db.session.commit()


def _stale(run_at: datetime, action: str) -> CadenceError:
    """Why an action on the run at ``run_at`` found nothing to change: the run is over (410) or held (409)."""
    db.session.expire_all()
    schedule = get_schedule()
    if schedule is None or not schedule.active or schedule.next_run_at != run_at:
        return CadenceError("this digest run is over (or the schedule changed): nothing was changed", 410)
    if schedule.held_for == run_at and action != "release":
        return CadenceError(f"this digest run is already held, by {schedule.held_by}", 409)
    return CadenceError("this digest run is not held", 409)


def send_now(run_at: datetime, actor: str, now: datetime | None = None) -> str:
    """Do the run at ``run_at`` now, as editors asked: create the digest at once; return what happened.

    The run is claimed first (one conditional UPDATE), so it can never send twice; a held run
    is refused (its hold must be released first).
    """
    now = now or utcnow()
    schedule = get_schedule()
    if schedule is None:
        raise CadenceError("there is no digest schedule", 410)
    upcoming = next_run(parse_rule(schedule.rule), schedule.anchor, max(now, run_at), org_zone())
    claimed = db.session.execute(
        db.update(DigestSchedule)
        .where(_this_run(run_at), or_(DigestSchedule.held_for.is_(None), DigestSchedule.held_for != run_at))
        .values(next_run_at=upcoming, due_at=None, last_run_at=now, last_outcome=f"sending now, as {actor} asked")
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        raise _stale(run_at, "send")
    _audit(actor, "cadence.send_now", {"run_at": run_at.isoformat()})
    db.session.commit()
    return _create(actor, f"as {actor} asked")


def _create(actor: str, why: str) -> str:
    """Create the digest of a claimed run and record the outcome on the schedule."""
    try:
        digest = create_digest(actor=actor)
    except DigestError as exc:
        outcome = f"skipped: {exc}"
    else:
        outcome = f"sent digest {digest.number} ({why})"
    _record(outcome[:300])
    return outcome


def _record(outcome: str) -> None:
    """Store the last run's outcome and commit."""
    db.session.execute(db.update(DigestSchedule).where(DigestSchedule.active.is_(True)).values(last_outcome=outcome))
    db.session.commit()


def shortfall(next_digest: NextDigest, min_items: dict[str, int]) -> str | None:
    """Why a digest of ``next_digest`` would not go out (no topic has its minimum), or None when it would."""
    counts = {topic: len(items) for topic, items in next_digest.content.items()}
    if not counts:
        return "nothing new"
    if any(count >= min_items.get(topic, 1) for topic, count in counts.items()):
        return None
    short = [f"{counts[t]} {NOUNS[t][counts[t] != 1]}, {min_items.get(t, 1)} needed" for t in counts]
    return "only " + "; ".join(short)


def tick(now: datetime | None = None) -> str | None:
    """Beat's minute: send the review of the next run when its window opens, then do the run when it is due.

    Returns what the run did, or None when no run was due (or another process did it).
    """
    now = now or utcnow()
    schedule = get_schedule()
    if schedule is None or not schedule.active:
        return None
    review(schedule, now)
    schedule = get_schedule()
    if schedule is None or not schedule.active or now < (schedule.due_at or schedule.next_run_at):
        return None
    return run(schedule.id, schedule.next_run_at, now)


def review(schedule: DigestSchedule, now: datetime) -> bool:
    """Email every active staff member the next run's review copy, once, when its window is open.

    A review that could only go out after the run time moves the run one window on (``due_at``).
    True when this call sent it.
    """
    seen = schedule.next_run_at
    window = timedelta(minutes=schedule.review_minutes)
    if not window or now < seen - window or schedule.review_sent_for == seen or schedule.held_for == seen:
        return False
    if shortfall(compose_next(), schedule.min_items) is not None:
        return False
    late = now >= seen
    due = now + window if late else None
    claimed = db.session.execute(
        db.update(DigestSchedule)
        .where(
            _this_run(seen),
            or_(DigestSchedule.review_sent_for.is_(None), DigestSchedule.review_sent_for != seen),
        )
        .values(review_sent_for=seen, due_at=due)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return False
    _audit("cadence", "cadence.review", {"run_at": seen.isoformat(), "late": late})
    db.session.commit()
    send_reviews(seen, due or seen, late)
    return True


def send_reviews(run_at: datetime, goes_out: datetime, late: bool) -> None:
    """Email the review copy of the run at ``run_at`` to every active staff member (admins and editors)."""
    shown = preview()
    if shown is None:
        return
    subject, rendered = shown
    staff = db.session.execute(db.select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.id))
    for member in staff.scalars().all():
        try:
            _send_review(member, run_at, goes_out, late, subject, rendered)
        except mail.SMTPError as exc:
            # One refused address must not cost the others their review; the run goes out on time anyway.
            current_app.logger.warning("review of the %s digest run not sent to %s: %s", run_at, member.email, exc)
            _audit("cadence", "cadence.review_failed", {"to": member.email, "smtp_code": exc.code})
            db.session.commit()


def _send_review(
    member: StaffUser, run_at: datetime, goes_out: datetime, late: bool, subject: str, shown: mail.RenderedEmail
) -> None:
    """Email one staff member the review copy with their own hold and send-now links."""
    config = current_app.config
    when = goes_out.astimezone(org_zone()).strftime("%-d %B %Y %H:%M %Z")
    rendered = mail.render_email(
        "review", org_name=config["ORG_NAME"], subject=subject, goes_out=when, late=late,
        hold_url=review_link(member.id, run_at, "hold"), send_url=review_link(member.id, run_at, "send"),
        digest_text=shown.text, digest_html=_body_of(shown.html), show_subscription_links=False,
    )  # fmt: skip
    mail.send_message(mail.message_factory(rendered, f"[Review] {subject} — goes out {when}"), member.email, {})


def _body_of(html: str) -> str:
    """What is inside an HTML document's ``<body>`` (the digest, to show inside the review email)."""
    found = re.search(r"<body[^>]*>(.*)</body>", html, re.DOTALL | re.IGNORECASE)
    return found.group(1) if found else html


def review_link(staff_id: int, run_at: datetime, action: str) -> str:
    """The signed link with which one staff member holds (or sends now) the run at ``run_at``."""
    token = make_token("cadence", [staff_id, int(run_at.timestamp()), action])
    return current_app.config["BASE_URL"] + REVIEW_PATH + token


@dataclass(frozen=True)
class ReviewLink:
    """What a review link is about: who holds it, which run, which action."""

    staff: StaffUser
    run_at: datetime
    action: str


def read_review_link(token: str) -> ReviewLink:
    """The staff member, run and action of a review link; CadenceError 404 when tampered, 403/410 when unusable."""
    try:
        payload = read_token("cadence", token, max_age=REVIEW_LINK_MAX_AGE)
    except TokenInvalid:
        raise CadenceError("this link is not valid: open it again from the email, or copy all of it", 404) from None
    if not (
        isinstance(payload, list)
        and len(payload) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31 for v in payload[:2])
        and payload[2] in REVIEW_ACTIONS
    ):
        raise CadenceError("this link is not valid", 404)
    staff = db.session.get(StaffUser, payload[0])
    if staff is None or not staff.active:
        raise CadenceError("this link belongs to a staff account that can no longer act", 403)
    run_at = datetime.fromtimestamp(payload[1], UTC)
    schedule = get_schedule()
    if schedule is None or not schedule.active or schedule.next_run_at != run_at:
        raise CadenceError("this digest run is over (or the schedule changed): the link has nothing left to do", 410)
    return ReviewLink(staff, run_at, payload[2])


def act_on_link(token: str) -> str:
    """Hold or send now the run a review link names, as its staff member; return what was done in words."""
    link = read_review_link(token)
    if link.action == "hold":
        hold(link.run_at, link.staff.email)
        return "held: this digest run will not go out. Release the hold in the console to let it go."
    return send_now(link.run_at, link.staff.email)


def run(schedule_id: int, seen: datetime, now: datetime) -> str | None:
    """Do the run at ``seen``, claimed by one conditional UPDATE: held, skipped, or a digest.

    The next run becomes the first after ``now``: after a long downtime, the missed runs make
    one digest, not one each. Returns the outcome, or None when another process claimed the run.
    """
    schedule = db.session.get(DigestSchedule, schedule_id)
    upcoming = next_run(parse_rule(schedule.rule), schedule.anchor, now, org_zone())  # type: ignore[union-attr]
    claimed = db.session.execute(
        db.update(DigestSchedule)
        .where(DigestSchedule.id == schedule_id, _this_run(seen))
        .values(next_run_at=upcoming, due_at=None, last_run_at=now, last_outcome="running")
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        return None
    # The row is ours until the commit: a hold arriving now waits, then finds its run over.
    held_for, held_by, min_items = db.session.execute(
        db.select(DigestSchedule.held_for, DigestSchedule.held_by, DigestSchedule.min_items).where(
            DigestSchedule.id == schedule_id
        )
    ).one()
    skipped = f"held by {held_by}" if held_for == seen else None
    if skipped is None:
        reason = shortfall(compose_next(), min_items)
        skipped = f"skipped: {reason}" if reason else None
    db.session.execute(
        db.update(DigestSchedule)
        .where(DigestSchedule.id == schedule_id)
        .values(held_for=None, held_by=None, last_outcome=(skipped or "sending")[:300])
    )
    _audit("cadence", "cadence.run", {"run_at": seen.isoformat(), "skipped": skipped})
    db.session.commit()
    if skipped:
        return skipped
    return _create("cadence", f"scheduled for {seen.astimezone(org_zone()).strftime('%-d %B %Y %H:%M %Z')}")
