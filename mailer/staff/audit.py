"""The console's audit log page: who did what and when, newest first, filtered by actor, action and days."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, render_template, request

from ..subscriptions.lookup import MAX_ID
from .audit_log import AuditFilter, audit_actions, audit_entries, day_end, day_start
from .auth import staff_only

#: Nested in the ``staff`` blueprint (see ``views.py``): its page is /staff/audit, endpoint ``staff.audit.log``.
bp = staff_only(Blueprint("audit", __name__))
SHOWN = 50
#: The longest actor text the filter takes: an address is at most 254 characters.
MAX_ACTOR = 254
#: The query arguments that filter the log (kept in the paging links when they can be used).
FILTERS = ("actor", "action", "from", "to")
DATE_PROBLEM = "Not a date: use the form YYYY-MM-DD."


@bp.get("/audit")
def log() -> tuple[str, int]:
    """Entries newest first; a filter value that cannot be read is a 400 that says which, the rest still apply."""
    actions = audit_actions()
    wanted, problems = _filter(actions)
    before = request.args.get("before", type=int)
    before = before if before is not None and 0 < before <= MAX_ID else None
    page = audit_entries(wanted, before, SHOWN)
    kept = {name: request.args[name] for name in FILTERS if request.args.get(name) and name not in problems}
    zone = current_app.config["ORG_TIMEZONE"]
    html = render_template(
        "staff/audit.html",
        page=page,
        actions=actions,
        problems=problems,
        kept=kept,
        zone=zone,
        tz=ZoneInfo(zone),
        first=before is None,
    )
    return html, 400 if problems else 200


def _filter(actions: list[str]) -> tuple[AuditFilter, dict[str, str]]:
    """The filter the query arguments ask for, and what is wrong with those that cannot be used, by name."""
    problems: dict[str, str] = {}
    actor = request.args.get("actor", "").strip()
    if len(actor) > MAX_ACTOR or not actor.isprintable():
        problems["actor"] = f"At most {MAX_ACTOR} printable characters."
    action = request.args.get("action", "")
    if action and action not in actions:
        problems["action"] = "No entry has that action."
    since = _day("from", day_start, problems)
    until = _day("to", day_end, problems)
    if since is not None and until is not None and until <= since:
        problems["to"] = "The last day comes before the first."
    return AuditFilter(
        actor=None if "actor" in problems else actor or None,
        action=None if "action" in problems else action or None,
        since=since,
        until=None if "to" in problems else until,
    ), problems


def _day(name: str, bound: Callable[[date, str], datetime], problems: dict[str, str]) -> datetime | None:
    """The UTC bound of the day in query argument ``name`` (in ORG_TIMEZONE); None, noting why, when unreadable."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return bound(date.fromisoformat(raw), current_app.config["ORG_TIMEZONE"])
    except (ValueError, OverflowError):
        problems[name] = DATE_PROBLEM
        return None
