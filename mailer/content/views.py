"""Public content pages: the "add to calendar" file for a meeting."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app

from .calendar import meeting_calendar
from .service import find_meeting

bp = Blueprint("content", __name__)


@bp.get("/meetings/<slug>.ics")
def meeting_ics(slug: str) -> Response:
    """The meeting as an iCalendar file a calendar app can import."""
    meeting = find_meeting(slug)
    if meeting is None:
        abort(404)
    body = meeting_calendar(meeting, current_app.config["BASE_URL"])
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="{meeting.slug}.ics"'
    return response
