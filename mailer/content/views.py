"""Public content pages: one page per meeting, project and news item, a meeting's "add to calendar" file and the
calendar of all meetings."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template
from werkzeug.exceptions import Gone

from ..extensions import db, limiter
from ..main.cache import public_page
from ..models import Meeting, MeetingChange
from .calendar import meeting_calendar, meetings_calendar
from .display import date_range, long_date, meeting_history, paragraphs, place
from .schema import SECTIONS
from .service import calendar_meetings, find_item

bp = Blueprint("content", __name__)


@bp.get("/<any(meetings, projects, news):section>/<slug>")
@limiter.exempt  # see main.views.home
def item_page(section: str, slug: str) -> Response:
    """An item's public page: 404 for an unknown slug, 410 once it is archived."""
    return public_page(f"item:{section}:{slug}", lambda: _render_item(section, slug))


def _render_item(section: str, slug: str) -> str:
    """The item's page from the database."""
    item = _published(SECTIONS[section][0], slug)
    if section == "news":
        details: dict[str, Any] = {"date": long_date(item.published_on), "paragraphs": paragraphs(item.body)}
    else:
        details = {"paragraphs": paragraphs(item.summary or "")}
    if section == "meetings":
        details |= {"when": date_range(item.start_date, item.end_date), "where": place(item.city, item.economy)}
        details["history"] = meeting_history(item, _changes(item))
    return render_template(f"items/{section}.html", item=item, **details)


def _changes(meeting: Meeting) -> list[MeetingChange]:
    """The meeting's recorded changes, newest first."""
    query = db.select(MeetingChange).where(MeetingChange.meeting_id == meeting.id)
    return list(db.session.execute(query.order_by(MeetingChange.changed_at.desc(), MeetingChange.id.desc())).scalars())


def _published(model: type, slug: str) -> Any:
    """The item with ``slug``; 404 when there is none, 410 when it is archived."""
    item = find_item(model, slug)
    if item is None:
        abort(404)
    if item.archived_at is not None:
        abort(410)
    return item


@bp.errorhandler(Gone)
def archived(error: Gone) -> tuple[str, int]:
    """The answer for an archived item: it existed, and is no longer published."""
    message = "This item has been archived and is no longer published."
    return render_template("error.html", code=410, title="Archived", message=message), 410


@bp.get("/meetings.ics")
@limiter.exempt  # see main.views.home
def meetings_ics() -> Response:
    """Every published meeting as one calendar that calendar apps subscribe to (the home page's webcal: link)."""
    return public_page("meetings-ics", _render_meetings_calendar, mimetype="text/calendar")


def _render_meetings_calendar() -> bytes:
    """The calendar of every meeting that is not archived, from the database."""
    return meetings_calendar(calendar_meetings(), current_app.config["BASE_URL"])


@bp.get("/meetings/<slug>.ics")
@limiter.exempt  # see main.views.home
def meeting_ics(slug: str) -> Response:
    """The meeting as an iCalendar file a calendar app can import."""
    response = public_page(f"meeting-ics:{slug}", lambda: _render_calendar(slug), mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}.ics"'
    return response


def _render_calendar(slug: str) -> bytes:
    """The meeting's calendar file from the database; 404 or 410 (nothing cached) as for its page."""
    return meeting_calendar(_published(Meeting, slug), current_app.config["BASE_URL"])
