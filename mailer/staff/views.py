"""The staff console: sign in and out, and the overview of digests and content."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required, login_user, logout_user
from werkzeug.wrappers import Response

from ..extensions import limiter
from ..subscriptions.transfer import _spreadsheet_safe
from .audit import bp as audit_bp
from .bounces import bp as bounces_bp
from .forms import LoginForm
from .overview import CACHE_SECONDS, content_totals, dashboard_figures, recent_digests
from .service import authenticate

bp = Blueprint("staff", __name__, url_prefix="/staff")
# Nested: /staff/bounces and /staff/suppressions sit beside the dashboard, as endpoints "staff.bounces.*".
bp.register_blueprint(bounces_bp)
# Likewise /staff/audit, endpoint "staff.audit.log".
bp.register_blueprint(audit_bp)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login() -> str | Response:
    """Sign in with email and password."""
    # Form fields only: Flask-WTF would otherwise read a JSON body as form data and choke on it.
    form = LoginForm(formdata=request.form if request.method == "POST" else None)
    if form.validate_on_submit():
        user = authenticate(form.email.data or "", form.password.data or "", request.remote_addr)
        if user is not None:
            login_user(user)
            return redirect(url_for("staff.dashboard"))
        form.password.errors.append("That email and password do not match an account.")
    return render_template("staff/login.html", form=form)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Sign out."""
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("staff.login"))


@bp.get("/")
@login_required
def dashboard() -> str:
    """Recent digests with their delivery counts, content totals, and the audience with its charts."""
    digests, counts = recent_digests()
    figures = dashboard_figures()
    return render_template(
        "staff/dashboard.html", digests=digests, counts=counts, totals=content_totals(), audience=figures.audience,
        figures=figures, cache_seconds=CACHE_SECONDS,
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
