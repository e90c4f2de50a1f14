"""``flask --app wsgi bounces receive|listen|poll|unsuppress``."""

from __future__ import annotations

import signal
import sys
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from ..extensions import db
from ..subscriptions.service import find_subscriber, lift_suppression
from .intake import queue_message
from .listener import start_listener
from .mailbox import MailboxError, poll_mailbox

bounces_cli = AppGroup("bounces", help="Bounces, complaints and unsubscribes that come back by mail.")
#: sysexits.h: the MTA keeps the message and tries again later.
EX_TEMPFAIL = 75
MAX_INPUT = 25 * 1024 * 1024


@bounces_cli.command("receive")
@click.option("--to", "recipients", multiple=True, help="The envelope recipient (e.g. Postfix's ${recipient}).")
def receive(recipients: tuple[str, ...]) -> None:
    """Read one message on stdin (an MTA's pipe) and queue it; exit 75 when it should be retried."""
    raw = sys.stdin.buffer.read(MAX_INPUT + 1)
    if len(raw) > MAX_INPUT:
        click.echo("message too large, ignored", err=True)
        return
    try:
        queue_message(raw, recipients)
    except Exception as exc:  # noqa: BLE001 - whatever stops queueing, the MTA must keep the message
        click.echo(f"cannot queue the message now, the MTA should retry: {exc}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo("queued", err=True)


@bounces_cli.command("listen")
@click.option("--bind", default=None, help="host:port to listen on (default BOUNCE_LISTEN).")
def listen(bind: str | None) -> None:
    """Receive bounces by SMTP until stopped (the Procfile's ``bounces`` process)."""
    host, _, port = (bind or current_app.config["BOUNCE_LISTEN"]).rpartition(":")
    controller = start_listener(current_app._get_current_object(), host.strip("[]") or "0.0.0.0", int(port))
    click.echo(f"listening for bounces on {host}:{port}", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@bounces_cli.command("poll")
def poll() -> None:
    """Read BOUNCE_MAILBOX_URL's folder once now and print how many messages were queued."""
    if not current_app.config.get("BOUNCE_MAILBOX_URL"):
        raise click.ClickException("BOUNCE_MAILBOX_URL is not set")
    try:
        queued = poll_mailbox()
    except MailboxError as exc:
        raise click.ClickException(f"bounce mailbox not read: {exc}") from None
    if queued is None:
        raise click.ClickException("another poll is reading the bounce mailbox now; try again in a moment")
    click.echo(f"{queued} messages queued")


@bounces_cli.command("unsuppress")
@click.argument("email")
def unsuppress(email: str) -> None:
    """Mail a suppressed address again, on its owner's request (logged)."""
    subscriber = find_subscriber(email)
    if subscriber is None:
        raise click.ClickException(f"no subscriber {email}")
    if not lift_suppression(subscriber, actor="cli", ip=None):
        raise click.ClickException(f"{subscriber.email} is not suppressed ({subscriber.status})")
    db.session.refresh(subscriber)
    click.echo(f"{subscriber.email} is {subscriber.status} again")
