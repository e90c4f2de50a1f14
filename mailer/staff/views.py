"""The staff console: the overview of digests and content; sign-in, sign-out and accounts live in account.py."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, abort, render_template
from flask_login import login_required
from werkzeug.wrappers import Response

from ..digests.cadence import get_schedule
from ..feeds.service import failing_feeds
from ..subscriptions.transfer import _spreadsheet_safe
from . import account
from .audit import bp as audit_bp
from .bounces import bp as bounces_bp
from .feeds import bp as feeds_bp
from .overview import CACHE_SECONDS, content_totals, dashboard_figures, recent_digests

bp = Blueprint("staff", __name__, url_prefix="/staff")
# Nested: /staff/bounces and /staff/suppressions sit beside the dashboard, as endpoints "staff.bounces.*".
bp.register_blueprint(bounces_bp)
# Likewise /staff/audit, endpoint "staff.audit.log".
bp.register_blueprint(audit_bp)
# /staff/feeds, endpoints "staff.feeds.*".
bp.register_blueprint(feeds_bp)
# /staff/account, /staff/login/code and /staff/password-reset, endpoints "staff.account.*"; sign-in and
# sign-out keep the endpoints "staff.login" and "staff.logout" that Flask-Login and the templates name.
bp.register_blueprint(account.bp)
bp.add_url_rule("/login", view_func=account.login, methods=["GET", "POST"])
bp.add_url_rule("/logout", view_func=account.logout, methods=["POST"])


@bp.get("/")
@login_required
def dashboard() -> str:
    """Recent digests with their delivery counts, content totals, and the audience with its charts."""
    digests, counts = recent_digests()
    figures = dashboard_figures()
    schedule = get_schedule()
    return render_template(
        "staff/dashboard.html", digests=digests, counts=counts, totals=content_totals(), audience=figures.audience,
        figures=figures, cache_seconds=CACHE_SECONDS, schedule=schedule if schedule and schedule.active else None,
        failing_feeds=failing_feeds(),
    )  # fmt: skip


@bp.get("/dashboard/<chart>.csv")
@login_required
def chart_csv(chart: str) -> Response:
    """One dashboard chart's figures as CSV, cells that a spreadsheet would run as formulas defused."""
    found = dashboard_figures().charts.get(chart)
    if found is None:
        abort(404)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in (found.columns, *found.rows):
        writer.writerow([_spreadsheet_safe(str(cell)) for cell in row])
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{found.name}.csv"'
    return response
