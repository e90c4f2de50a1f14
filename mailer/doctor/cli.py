"""``flask --app wsgi doctor``: one line per check, exit 1 when any failed."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .checks import FAIL, failed, run_checks

#: How each level reads in a terminal: a failure stands out.
LABELS = {"ok": "ok", "warn": "warn", FAIL: "FAIL"}


@click.command("doctor")
@with_appcontext
def doctor() -> None:
    """Check what would hurt delivery: SPF, DKIM, DMARC, BASE_URL, one-click unsubscribe, the next digest."""
    results = run_checks()
    for result in results:
        click.echo(f"{LABELS[result.level]:<4}  {result.name}: {result.detail}")
    if failed(results):
        raise SystemExit(1)
