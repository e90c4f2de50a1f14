"""Public content pages: the "add to calendar" file for a meeting."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app

from ..extensions import limiter
from ..main.cache import public_page
from .calendar import meeting_calendar
from .service import find_meeting

bp = Blueprint("content", __name__)


@bp.get("/meetings/<slug>.ics")
@limiter.exempt  # see main.views.home
def meeting_ics(slug: str) -> Response:
    """The meeting as an iCalendar file a calendar app can import."""
    response = public_page(f"meeting-ics:{slug}", lambda: _render_calendar(slug), mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'attachment; filename="{slug}.ics"'
    return response


def _render_calendar(slug: str) -> bytes:
    """The meeting's calendar file from the database; 404 (nothing cached) for an unknown slug."""
    meeting = find_meeting(slug)
    if meeting is None:
        abort(404)
    return meeting_calendar(meeting, current_app.config["BASE_URL"])
