"""``flask --app wsgi subscribers export|import``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import AppGroup

from .transfer import NotUTF8, SubscriberImportError, import_subscribers, utf8_lines, write_export

subscribers_cli = AppGroup("subscribers", help="Subscribers as CSV.")
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
        f"suppressed; {len(report.already_known)} already known and left unchanged"
    )
