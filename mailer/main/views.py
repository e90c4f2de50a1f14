"""The home page and a health check for load balancers."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, render_template

from ..content.calendar import feed_url
from ..content.service import live_items
from ..extensions import db, limiter
from ..models import Meeting, NewsItem, Project
from ..redis_client import get_redis, redis_key
from .cache import public_page
from .tasks import HEARTBEAT

bp = Blueprint("main", __name__)


@bp.get("/")
@limiter.exempt  # no limit applies to public pages, and checking that costs more than serving the cached page
def home() -> Response:
    """The organisation's latest meetings, projects and news, with the way to subscribe."""
    return public_page("home", _render_home)


def _render_home() -> str:
    """The home page from the database: the latest items that are not archived."""
    meetings = live_items(Meeting, Meeting.start_date.desc(), 6)
    projects = live_items(Project, Project.updated_at.desc(), 6)
    news = live_items(NewsItem, NewsItem.published_on.desc(), 6)
    feed = feed_url(current_app.config["BASE_URL"])
    return render_template("home.html", meetings=meetings, projects=projects, news=news, meetings_feed=feed)


@bp.get("/healthz")
def health() -> dict[str, object]:
    """Answer 200 when the database and Redis answer; say when a worker last ran a task."""
    db.session.execute(db.text("SELECT 1"))
    beat = get_redis().get(redis_key(HEARTBEAT))
    age = round(time.time() - float(beat), 1) if beat else None
    return {"status": "ok", "worker_heartbeat_age_seconds": age}
