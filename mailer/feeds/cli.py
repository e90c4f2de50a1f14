"""``flask --app wsgi feeds add|list|fetch|remove``: content that flows in from RSS/Atom and iCalendar feeds."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from ..staff.timefmt import local_time
from . import service

feeds_cli = AppGroup("feeds", help="RSS/Atom feeds (news) and iCalendar URLs (meetings) fetched on a schedule.")
TIME = "%-d %b %Y %H:%M %Z"


@feeds_cli.command("add")
@click.argument("url")
@click.option("--as", "kind", required=True, metavar="news|meetings", help="What the feed's entries become.")
@click.option("--kind", "meeting_kind", default=None, metavar="KIND", help="A meetings feed's kind of meeting.")
def add(url: str, kind: str, meeting_kind: str | None) -> None:
    """Add a feed; it is fetched within a minute, then every FEED_FETCH_INTERVAL."""
    try:
        feed = service.add_feed(url, kind, meeting_kind, actor="cli")
    except service.FeedError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added feed {feed.id}: {feed.url} as {feed.kind}")


@feeds_cli.command("list")
def list_() -> None:
    """Every feed: its id, kind, address, last fetch and its failure in words."""
    listing = service.list_feeds()
    if not listing:
        click.echo("no feeds")
    for row in listing:
        feed = row.feed
        kind = f"meetings ({feed.meeting_kind or 'other'})" if feed.kind == "meetings" else feed.kind
        checked = local_time(feed.last_checked_at, TIME) or "never"
        click.echo(f"{feed.id}  {kind}  {feed.url}  checked {checked}, {row.items} items from {row.entries} entries")
        if feed.last_error:
            click.echo(f"   failing ({feed.failures} in a row): {feed.last_error}")


@feeds_cli.command("fetch")
@click.argument("feed_id", required=False, type=int)
def fetch(feed_id: int | None) -> None:
    """Fetch one feed (or all of them) now and print what came in; exit 1 when one failed."""
    ids = [feed_id] if feed_id is not None else [row.feed.id for row in service.list_feeds()]
    failed = False
    for one in ids:
        try:
            report = service.fetch_feed(one, actor="cli")
        except service.FeedError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"feed {one}: {report.summary()}")
        failed = failed or report.error is not None
    if failed:
        raise SystemExit(1)


@feeds_cli.command("remove")
@click.argument("feed_id", type=int)
def remove(feed_id: int) -> None:
    """Remove a feed; the items it brought stay (their source still names it)."""
    feed = service.remove_feed(feed_id, actor="cli")
    if feed is None:
        raise click.ClickException(f"there is no feed {feed_id}")
    click.echo(f"removed feed {feed_id}: {feed.url}")
