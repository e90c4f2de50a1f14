"""Command-line interface: ``flask --app wsgi staff|content|digest|subscribers|bounces|doctor|feeds ...``."""

from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from .staff.service import StaffError, create_staff

staff_cli = AppGroup("staff", help="Staff accounts.")


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "editor"]), default="editor", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def staff_create(email: str, role: str, password_stdin: bool) -> None:
    """Create a staff account; asks for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_staff(email, password, role)
    except StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.role} {user.email}")


def register(app: Flask) -> None:
    """Attach every command group to ``app``."""
    from .bounces.cli import bounces_cli
    from .content.cli import content_cli
    from .digests.cli import digest_cli
    from .doctor.cli import doctor
    from .feeds.cli import feeds_cli
    from .subscriptions.cli import subscribers_cli

    app.cli.add_command(staff_cli)
    app.cli.add_command(content_cli)
    app.cli.add_command(digest_cli)
    app.cli.add_command(subscribers_cli)
    app.cli.add_command(bounces_cli)
    app.cli.add_command(doctor)
    app.cli.add_command(feeds_cli)
