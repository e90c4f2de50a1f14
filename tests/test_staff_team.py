"""The team page: admins add accounts and switch them off or on; editors cannot get in."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import AuditEntry, StaffUser
from tests.conftest import STAFF_PASSWORD, AuthActions

PASSWORD = STAFF_PASSWORD


@pytest.fixture
def admin(auth: AuthActions) -> FlaskClient:
    """A signed-in admin, with an editor colleague."""
    auth.create("editor@example.org")
    return auth.login("boss@example.org", role="admin")


def _team(app: Flask) -> dict[str, tuple[str, bool]]:
    """Every account as email -> (role, active)."""
    with app.app_context():
        return {u.email: (u.role, u.active) for u in db.session.execute(db.select(StaffUser)).scalars()}


def test_editors_and_visitors_cannot_use_it(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    """Anonymous: sent to sign in; an editor: 403 on the page and on every action."""
    assert client.get("/staff/team/").status_code == 302
    auth.login()
    assert client.get("/staff/team/").status_code == 403
    assert "Team" not in client.get("/staff/").get_data(as_text=True)
    data = {"email": "new@example.org", "role": "admin", "password": PASSWORD}
    assert auth.post("/staff/team/", data).status_code == 403
    assert "new@example.org" not in _team(app)


def test_admin_adds_an_editor_who_can_sign_in(
    app: Flask, admin: FlaskClient, client: FlaskClient, auth: AuthActions
) -> None:
    """The new account exists with its role and can sign in with the first password."""
    response = auth.post("/staff/team/", {"email": "New@Example.org", "role": "editor", "password": PASSWORD})
    assert response.status_code == 303
    assert _team(app)["New@example.org"] == ("editor", True)
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.target == "New@example.org")).scalar()
        assert (entry.action, entry.actor) == ("staff.create", "boss@example.org")


def test_switched_off_account_is_signed_out_at_once(app: Flask, admin: FlaskClient, auth: AuthActions) -> None:
    """An editor signed in elsewhere loses the console as soon as an admin switches the account off."""
    other = AuthActions(app, app.test_client()).login(role=None)
    assert other.get("/staff/").status_code == 200
    with app.app_context():
        editor_id = db.session.execute(db.select(StaffUser.id).where(StaffUser.role == "editor")).scalar()
    assert auth.post(f"/staff/team/{editor_id}/deactivate").status_code == 303
    assert _team(app)["editor@example.org"] == ("editor", False)
    assert other.get("/staff/").status_code == 302
    assert auth.post(f"/staff/team/{editor_id}/activate").status_code == 303
    assert _team(app)["editor@example.org"] == ("editor", True)


def test_admin_cannot_switch_themselves_off(app: Flask, admin: FlaskClient, auth: AuthActions) -> None:
    """Locking yourself out is refused with 409."""
    with app.app_context():
        own = db.session.execute(db.select(StaffUser.id).where(StaffUser.role == "admin")).scalar()
    response = auth.post(f"/staff/team/{own}/deactivate")
    assert response.status_code == 409
    assert "cannot deactivate your own account" in response.get_data(as_text=True)
    assert _team(app)["boss@example.org"] == ("admin", True)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"email": "not an address", "role": "editor", "password": PASSWORD}, "Invalid email address"),
        ({"email": "x@example.org\r\nBcc: y@example.org", "role": "editor", "password": PASSWORD}, "Invalid email"),
        ({"email": "x@example.org", "role": "owner", "password": PASSWORD}, "Not a valid choice"),
        ({"email": "x@example.org", "role": "editor", "password": "short"}, "12 to 1024 characters"),
        ({"email": "x@example.org", "role": "editor", "password": "p" * 2000}, "Field cannot be longer"),
        ({"email": "EDITOR@example.org", "role": "editor", "password": PASSWORD}, "already exists"),
    ],
)
def test_bad_input_adds_nobody(
    app: Flask, admin: FlaskClient, data: dict[str, str], message: str, auth: AuthActions
) -> None:
    """Malformed, injected, oversized and duplicate values: 400 with the reason, no new account."""
    before = _team(app)
    response = auth.post("/staff/team/", data)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _team(app) == before


def test_a_password_error_shows_under_the_password(app: Flask, admin: FlaskClient, auth: AuthActions) -> None:
    """A password the service refuses is reported next to the Password field, not under Email."""
    page = auth.post("/staff/team/", {"email": "x@example.org", "role": "editor", "password": "short"})
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert re.search(r'<p class="error" id="password-error">[^<]*12 to 1024 characters', html)
    assert 'id="email-error"' not in html


def test_forged_or_unknown_actions_change_nothing(app: Flask, admin: FlaskClient, auth: AuthActions) -> None:
    """No token: 400; an unknown account or action: 404."""
    with app.app_context():
        editor_id = db.session.execute(db.select(StaffUser.id).where(StaffUser.role == "editor")).scalar()
    assert admin.post(f"/staff/team/{editor_id}/deactivate").status_code == 400
    assert auth.post("/staff/team/999/deactivate").status_code == 404
    assert auth.post(f"/staff/team/{editor_id}/promote").status_code == 404
    assert _team(app)["editor@example.org"] == ("editor", True)
