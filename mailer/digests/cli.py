"""``flask --app wsgi digest preview|send|status|pause|resume|cancel|retry-failed|cadence``."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from ..extensions import db
from ..models import ALL_TOPICS, DELIVERY_STATUSES, Digest, DigestSchedule, DigestStatus, Topic
from ..sending import control
from ..staff.timefmt import LocalTimeError, org_zone, to_utc
from . import cadence
from .compose import preview
from .service import MAX_ID, DigestError, create_digest, delivery_counts

digest_cli = AppGroup("digest", help="Compose, send and follow digests.")


def _topics(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    """Parse ``meetings,projects`` into a topic mask (all topics when not given)."""
    if not value:
        return ALL_TOPICS
    try:
        return int(Topic.from_names([name.strip() for name in value.split(",") if name.strip()]))
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; choose from {', '.join(Topic.names())}") from None


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Parse an ISO 8601 time (one without an offset stays naive: ``_in_org_zone`` places it)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO time such as 2026-12-01T09:00+01:00: {value!r}") from None


def _in_org_zone(moment: datetime) -> datetime:
    """An aware time as it is; a naive one as a local time in ORG_TIMEZONE (needs the app, unlike parsing)."""
    if moment.tzinfo is not None:
        return moment
    try:
        return to_utc(moment, org_zone())
    except LocalTimeError as exc:
        raise click.BadParameter(str(exc), param_hint="'--at'") from None


@digest_cli.command("preview")
@click.option("--topics", callback=_topics, help="Comma-separated topics: meetings,projects,news (default all).")
def digest_preview(topics: int) -> None:
    """Print the text part of the next digest."""
    shown = preview(topics)
    if shown is None:
        raise click.ClickException("nothing new since the last digest for these topics")
    click.echo(shown[1].text)


@digest_cli.command("send")
@click.option(
    "--at", "at", callback=_moment, metavar="ISO-TIME", help="Schedule for this time (in ORG_TIMEZONE if no offset)."
)
@click.option("--test-to", metavar="EMAIL", help="Send one test copy to this address only.")
def digest_send(at: datetime | None, test_to: str | None) -> None:
    """Create the next digest and queue it (or schedule it, or send a test copy); print its id (not its number)."""
    at = _in_org_zone(at) if at else None
    try:
        digest = create_digest(at=at, test_to=test_to)
    except DigestError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(digest.id)
    what = f"scheduled for {at.isoformat()}" if at else f"test copy to {test_to}" if test_to else "sent to the workers"
    name = f"test send {digest.id}" if digest.is_test else f"digest {digest.id} (Digest {digest.number} to readers)"
    click.echo(f"{name} {what}: {digest.subject}", err=True)


@digest_cli.command("status")
@click.argument("digest_id", type=click.IntRange(1, MAX_ID))
def digest_status(digest_id: int) -> None:
    """Print a digest's status (with why, when paused) and its deliveries counted by status."""
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise click.ClickException(f"no digest {digest_id}")
    status = f"paused ({digest.paused_reason})" if digest.status == DigestStatus.PAUSED else digest.status
    if digest.is_test:
        shown = f" (test to {digest.test_to})"
    elif digest.kind == "reminder":
        shown = f" (meeting reminder: {digest.subject})"
    else:
        shown = f" (Digest {digest.number} to readers)"
    click.echo(f"digest {digest.id}: {status}{shown}")
    counts = delivery_counts(digest_id)
    for name in DELIVERY_STATUSES:
        click.echo(f"{name}: {counts.get(name, 0)}")


def _control(action: str, digest_id: int, done: str) -> None:
    """Run one control service as the CLI user; a refusal exits 1 with the reason."""
    try:
        result = getattr(control, action)(digest_id, actor="cli")
    except control.SendingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(done.format(id=digest_id, n=result))


@digest_cli.command("pause")
@click.argument("digest_id", type=click.IntRange(1, MAX_ID))
def digest_pause(digest_id: int) -> None:
    """Pause a digest that is going out (messages already handed to a worker finish)."""
    _control("pause", digest_id, "digest {id} paused")


@digest_cli.command("resume")
@click.argument("digest_id", type=click.IntRange(1, MAX_ID))
def digest_resume(digest_id: int) -> None:
    """Resume a paused digest."""
    _control("resume", digest_id, "digest {id} resumed")


@digest_cli.command("cancel")
@click.argument("digest_id", type=click.IntRange(1, MAX_ID))
def digest_cancel(digest_id: int) -> None:
    """Cancel a scheduled, queued, paused or sending digest; what was not sent is not sent."""
    _control("cancel", digest_id, "digest {id} cancelled; {n} deliveries will not be sent")


@digest_cli.command("retry-failed")
@click.argument("digest_id", type=click.IntRange(1, MAX_ID))
def digest_retry_failed(digest_id: int) -> None:
    """Queue the digest's failed deliveries again."""
    _control("retry_failed", digest_id, "digest {id}: {n} failed deliveries queued again")


@digest_cli.group("cadence")
def cadence_cli() -> None:
    """The automatic digest schedule (in ORG_TIMEZONE) and its review window."""


def _bad(message: str) -> click.ClickException:
    """A malformed value: one line, exit 2 (as click's own malformed options), nothing changed."""
    refusal = click.ClickException(message)
    refusal.exit_code = 2
    return refusal


@cadence_cli.command("set")
@click.argument("rule")
@click.option("--review", default="0", metavar="30m|24h|2d|0", help="Email editors a review copy this long before.")
@click.option("--min-items", default="1", metavar="N|TOPIC=N,...", help="New items a topic needs to trigger a digest.")
def cadence_set(rule: str, review: str, min_items: str) -> None:
    """Set the schedule, e.g. "weekly mon 09:00", "every 2 weeks mon 09:00", "monthly first tue 09:00"."""
    try:
        schedule = cadence.set_schedule(
            rule, cadence.parse_review(review), cadence.parse_min_items(min_items), actor="cli"
        )
    except cadence.CadenceError as exc:
        raise _bad(str(exc)) from None
    click.echo(f"digest schedule set: {cadence.parse_rule(schedule.rule).describe()}")
    _show(schedule)


@cadence_cli.command("show")
def cadence_show() -> None:
    """Print the schedule: rule, next run (ORG_TIMEZONE and UTC), review window, minimum items, hold, last outcome."""
    schedule = cadence.get_schedule()
    if schedule is None:
        click.echo("no digest schedule: digests go out when staff send them")
        return
    if not schedule.active:
        click.echo(f"the digest schedule is off (it was: {schedule.rule})")
        return
    _show(schedule)


def _show(schedule: DigestSchedule) -> None:
    """Print one schedule's settings and state, a line each."""
    zone = org_zone()
    rule = cadence.parse_rule(schedule.rule)
    due = schedule.due_at or schedule.next_run_at
    click.echo(f"rule: {schedule.rule} ({rule.describe()}, {zone.key})")
    click.echo(f"next run: {due.astimezone(zone):%Y-%m-%d %H:%M %Z} ({due.astimezone(UTC):%Y-%m-%d %H:%M} UTC)")
    if schedule.due_at is not None:
        click.echo("  (waiting one review window: the review email went out late)")
    click.echo(f"review: {cadence.describe_review(schedule.review_minutes)}")
    click.echo(f"min items: {cadence.describe_min_items(schedule.min_items)}")
    held = schedule.held_for is not None and schedule.held_for == schedule.next_run_at
    click.echo(f"held: {'yes, by ' + str(schedule.held_by) if held else 'no'}")
    click.echo(f"last outcome: {schedule.last_outcome or 'none yet'}")


@cadence_cli.command("off")
def cadence_off() -> None:
    """Switch the schedule off: no more automatic digests (sending by hand is unchanged)."""
    if cadence.turn_off(actor="cli"):
        click.echo("digest schedule off")
    else:
        click.echo("the digest schedule was not on: nothing changed")
