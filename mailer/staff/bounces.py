"""The console's bounce pages: what came back lately, and the addresses suppressed after bounces or complaints."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, render_template, request

from ..bounces.report import SuppressionCursor, recent_bounces, suppressions
from ..models import BOUNCE_KINDS
from ..subscriptions.lookup import MAX_ID
from .auth import staff_only
from .forms import LiftSuppressionForm

#: Nested in the ``staff`` blueprint (see ``views.py``): its pages are /staff/bounces and /staff/suppressions.
bp = staff_only(Blueprint("bounces", __name__))
SHOWN = 50


@bp.get("/bounces")
def recent() -> str:
    """Bounces, complaints and unsubscribes by mail, newest first, of one kind or all."""
    kind = request.args.get("kind")
    kind = kind if kind in BOUNCE_KINDS else None
    before = _id_arg("before")
    listing = recent_bounces(kind, before, SHOWN)
    return render_template("staff/bounces.html", listing=listing, kind=kind, kinds=BOUNCE_KINDS, first=before is None)


@bp.get("/suppressions")
def suppressed() -> str:
    """Addresses suppressed after bounces or a complaint, most recent first, each with the form to lift it."""
    after = _suppression_cursor()
    listing = suppressions(after, SHOWN)
    return render_template(
        "staff/suppressions.html", listing=listing, first=after is None, form=LiftSuppressionForm(formdata=None)
    )


def _id_arg(name: str) -> int | None:
    """The query argument ``name`` as a row id; None when absent, unreadable or out of range (the first page)."""
    value = request.args.get(name, type=int)
    return value if value is not None and 0 < value <= MAX_ID else None


def _suppression_cursor() -> SuppressionCursor | None:
    """The suppression list's cursor from ``before_id`` and ``before_at`` (ISO 8601, absent: unknown time)."""
    subscriber_id = _id_arg("before_id")
    raw = request.args.get("before_at")
    if subscriber_id is None or not raw:
        return None if subscriber_id is None else (None, subscriber_id)
    try:
        moment = datetime.fromisoformat(raw)
        return (moment.astimezone(UTC), subscriber_id) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):
        return None
