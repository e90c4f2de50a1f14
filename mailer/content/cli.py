"""``flask --app wsgi content import FILE [--demo]``."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from .importer import ContentFileError, import_file

content_cli = AppGroup("content", help="Meetings, projects and news.")


@content_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--demo", is_flag=True, help="Mark every imported item as demo content.")
def content_import(file: Path, demo: bool) -> None:
    """Import meetings, projects and news from a JSON FILE (idempotent by slug)."""
    try:
        report = import_file(file, demo=demo)
    except ContentFileError as exc:
        raise click.ClickException(f"nothing imported:\n{exc}") from None
    click.echo(report.summary())
    for section, slugs in report.created.items():
        click.echo(f"created {section}: {', '.join(slugs)}")
    for section, slugs in report.updated.items():
        click.echo(f"updated {section}: {', '.join(slugs)}")
