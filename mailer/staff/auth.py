"""Flask-Login wiring for staff accounts."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from ..extensions import db, login
from ..models import StaffUser


@login.user_loader
def load_staff(user_id: str) -> StaffUser | None:
    """The active staff account a session refers to, or None."""
    if not user_id.isdigit():
        return None
    user = db.session.get(StaffUser, int(user_id))
    return user if user is not None and user.active else None


login.login_view = "staff.login"
login.login_message = "Please sign in to use the console."


def staff_only(bp: Blueprint) -> Blueprint:
    """Make every page of ``bp`` need a signed-in staff member (visitors are sent to sign in)."""

    @bp.before_request
    @login_required
    def signed_in() -> None:
        """Nothing more to check: login_required has let the request through."""

    return bp
