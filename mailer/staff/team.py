"""The console's team page, for admins: who can sign in, add an account, switch one off or on.

This is what the two roles mean: editors do everything about content, subscribers and
digests; admins can also manage the staff accounts.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from ..extensions import db
from ..models import StaffUser
from .auth import staff_only
from .forms import NewStaffForm, SendForm
from .service import StaffError, create_staff, set_active

bp = staff_only(Blueprint("staff_team", __name__, url_prefix="/staff/team"))


@bp.before_request
def _admins_only() -> None:
    """Admins only (staff_only has already sent visitors to sign in); editors get 403."""
    if current_user.role != "admin":
        abort(403)


def _page(form: NewStaffForm | None = None, status: int = 200) -> tuple[str, int]:
    """The team list with the form to add an account."""
    team = db.session.execute(db.select(StaffUser).order_by(StaffUser.email)).scalars().all()
    form = form or NewStaffForm(formdata=None)
    return render_template("staff/team.html", team=team, form=form, toggle=SendForm(formdata=None)), status


@bp.get("/")
def index() -> tuple[str, int]:
    """Every staff account."""
    return _page()


@bp.post("/")
def add() -> tuple[str, int] | Response:
    """Create an account with the role and first password given."""
    form = NewStaffForm(formdata=request.form)
    if not form.validate():
        return _page(form, 400)
    try:
        user = create_staff(form.email.data or "", form.password.data or "", form.role.data, actor=current_user.email)
    except StaffError as exc:
        # The message goes next to the input it is about (a short password under Password).
        getattr(form, exc.field, form.email).errors.append(str(exc)[:1].upper() + str(exc)[1:] + ".")
        return _page(form, 400)
    flash(f"{user.email} can now sign in as {user.role}.")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:user_id>/<any(activate, deactivate):change>")
def toggle(user_id: int, change: str) -> tuple[str, int] | Response:
    """Switch an account on or off (signing in stops at once for a switched-off account)."""
    if not SendForm(formdata=request.form).validate():
        abort(400)
    user = db.session.get(StaffUser, user_id) if 0 < user_id < 2**31 else None
    if user is None:
        abort(404)
    try:
        set_active(user, change == "activate", current_user)
    except StaffError as exc:
        flash(str(exc)[:1].upper() + str(exc)[1:] + ".", "error")
        return _page(status=409)
    flash(f"{user.email} is {'active' if user.active else 'switched off'}.")
    return redirect(url_for(".index"), 303)
