"""Flask-Login wiring for staff accounts."""

from __future__ import annotations

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
