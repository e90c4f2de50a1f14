"""``flask --app wsgi subscribers export|import|erase``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from .erasure import erase_subscriber, is_erased
from .service import find_subscriber
from .transfer import NotUTF8, SubscriberImportError, import_subscribers, utf8_lines, write_export

subscribers_cli = AppGroup("subscribers", help="Subscribers as CSV; erasure on request.")
MAX_FILE = 200 * 1024 * 1024


@subscribers_cli.command("export")
def export() -> None:
    """Write every subscriber, with status, topics and consent evidence, as CSV to stdout."""
    count = write_export(sys.stdout)
    click.echo(f"exported {count} subscribers", err=True)


@subscribers_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--send-confirmations", is_flag=True, help="Email a confirmation link to rows without consent.")
def import_(file: Path, send_confirmations: bool) -> None:
    """Import subscribers from CSV: all rows or none; known addresses are left as they are."""
    if file.stat().st_size > MAX_FILE:
        raise click.ClickException(f"{file}: larger than {MAX_FILE // (1024 * 1024)} MB")
    try:
        with file.open("rb") as stream:
            report = import_subscribers(
                utf8_lines(stream), source_name=file.name, send_confirmations=send_confirmations
            )
    except NotUTF8 as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    except SubscriberImportError as exc:
        raise click.ClickException(f"{file}: nothing imported:\n" + "\n".join(exc.problems)) from None
    click.echo(
        f"imported {report.confirmed} confirmed, {report.pending} pending, {report.opted_out} unsubscribed or "
        f"suppressed; {len(report.already_known)} already known and left unchanged; "
        f"{report.erased_skipped} erased, skipped"
    )


@subscribers_cli.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when nobody can answer).")
def erase(email: str, yes: bool) -> None:
    """Erase every piece of personal data about EMAIL on its owner's request; the address stays blocked."""
    subscriber = find_subscriber(email.strip())
    if subscriber is None:
        known = " (it was erased already)" if is_erased(email) else ""
        raise click.ClickException(f"no subscriber has the address {email}{known}")
    if not yes:
        _confirm_erasure(subscriber.email)
    marker = erase_subscriber(subscriber, actor="cli", ip=None)
    if marker is None:
        raise click.ClickException(f"{email} was erased by someone else meanwhile")
    click.echo(f"erased {email}: the audit log names it {marker}")


def _confirm_erasure(email: str) -> None:
    """Ask before erasing; with nobody to answer (no stdin, CI) that is an error, not a yes."""
    try:
        agreed = click.confirm(f"Erase {email}, its consent log and its address in deliveries for good?")
    except click.Abort:
        raise click.UsageError("nobody to confirm the erasure: add --yes") from None
    if not agreed:
        raise click.ClickException("nothing erased")
