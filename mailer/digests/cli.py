"""``flask --app wsgi digest preview|send|status``."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from ..extensions import db
from ..models import ALL_TOPICS, Digest, Topic
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
    """Parse an ISO 8601 time; one without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO time such as 2026-12-01T09:00+01:00: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@digest_cli.command("preview")
@click.option("--topics", callback=_topics, help="Comma-separated topics: meetings,projects,news (default all).")
def digest_preview(topics: int) -> None:
    """Print the text part of the next digest."""
    shown = preview(topics)
    if shown is None:
        raise click.ClickException("nothing new since the last digest for these topics")
    click.echo(shown[1].text)


@digest_cli.command("send")
@click.option("--at", "at", callback=_moment, metavar="ISO-TIME", help="Schedule for this time (UTC if no offset).")
@click.option("--test-to", metavar="EMAIL", help="Send one test copy to this address only.")
def digest_send(at: datetime | None, test_to: str | None) -> None:
    """Create the next digest and queue it (or schedule it, or send a test copy); print its id."""
    try:
        digest = create_digest(at=at, test_to=test_to)
    except DigestError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(digest.id)
    what = f"scheduled for {at.isoformat()}" if at else f"test copy to {test_to}" if test_to else "queued"
    click.echo(f"digest {digest.id} {what}: {digest.subject}", err=True)


@digest_cli.command("status")
@click.argument("digest_id", type=click.IntRange(1, MAX_ID))
def digest_status(digest_id: int) -> None:
    """Print a digest's status and its deliveries counted by status."""
    digest = db.session.get(Digest, digest_id)
    if digest is None:
        raise click.ClickException(f"no digest {digest_id}")
    click.echo(f"digest {digest.id}: {digest.status}{' (test to ' + digest.test_to + ')' if digest.is_test else ''}")
    counts = {"queued": 0, "sent": 0, "failed": 0, **delivery_counts(digest_id)}
    for status, count in counts.items():
        click.echo(f"{status}: {count}")
