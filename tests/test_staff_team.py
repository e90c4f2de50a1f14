"""The team page: admins add accounts and switch them off or on; editors cannot get in."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import AuditEntry, StaffUser
from mailer.staff.service import create_staff
from tests.conftest import csrf_token

PASSWORD = "correct horse battery"


def _sign_in(client: FlaskClient, email: str) -> None:
    """Sign ``email`` in with the shared test password."""
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    client.post("/staff/login", data={"csrf_token": token, "email": email, "password": PASSWORD})


@pytest.fixture
def admin(app: Flask, client: FlaskClient) -> FlaskClient:
    """A signed-in admin, with an editor colleague."""
    with app.app_context():
        create_staff("boss@example.org", PASSWORD, role="admin")
        create_staff("editor@example.org", PASSWORD)
    _sign_in(client, "boss@example.org")
    return client


def _post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> object:
    """Post with the session's CSRF token."""
    token = csrf_token(client.get("/staff/").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **(data or {})})


def _team(app: Flask) -> dict[str, tuple[str, bool]]:
    """Every account as email -> (role, active)."""
    with app.app_context():
        return {u.email: (u.role, u.active) for u in db.session.execute(db.select(StaffUser)).scalars()}


def test_editors_and_visitors_cannot_use_it(app: Flask, client: FlaskClient) -> None:
    """Anonymous: sent to sign in; an editor: 403 on the page and on every action."""
    with app.app_context():
        create_staff("editor@example.org", PASSWORD)
    assert client.get("/staff/team/").status_code == 302
    _sign_in(client, "editor@example.org")
    assert client.get("/staff/team/").status_code == 403
    assert "Team" not in client.get("/staff/").get_data(as_text=True)
    data = {"email": "new@example.org", "role": "admin", "password": PASSWORD}
    assert _post(client, "/staff/team/", data).status_code == 403
    assert "new@example.org" not in _team(app)


def test_admin_adds_an_editor_who_can_sign_in(app: Flask, admin: FlaskClient, client: FlaskClient) -> None:
    """The new account exists with its role and can sign in with the first password."""
    response = _post(admin, "/staff/team/", {"email": "New@Example.org", "role": "editor", "password": PASSWORD})
    assert response.status_code == 303
    assert _team(app)["New@example.org"] == ("editor", True)
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.target == "New@example.org")).scalar()
        assert (entry.action, entry.actor) == ("staff.create", "boss@example.org")


def test_switched_off_account_is_signed_out_at_once(app: Flask, admin: FlaskClient) -> None:
    """An editor signed in elsewhere loses the console as soon as an admin switches the account off."""
    other = app.test_client()
    _sign_in(other, "editor@example.org")
    assert other.get("/staff/").status_code == 200
    with app.app_context():
        editor_id = db.session.execute(db.select(StaffUser.id).where(StaffUser.role == "editor")).scalar()
    assert _post(admin, f"/staff/team/{editor_id}/deactivate").status_code == 303
    assert _team(app)["editor@example.org"] == ("editor", False)
    assert other.get("/staff/").status_code == 302
    assert _post(admin, f"/staff/team/{editor_id}/activate").status_code == 303
    assert _team(app)["editor@example.org"] == ("editor", True)


def test_admin_cannot_switch_themselves_off(app: Flask, admin: FlaskClient) -> None:
    """Locking yourself out is refused with 409."""
    with app.app_context():
        own = db.session.execute(db.select(StaffUser.id).where(StaffUser.role == "admin")).scalar()
    response = _post(admin, f"/staff/team/{own}/deactivate")
    assert response.status_code == 409 and "cannot deactivate your own account" in response.get_data(as_text=True)
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
def test_bad_input_adds_nobody(app: Flask, admin: FlaskClient, data: dict[str, str], message: str) -> None:
    """Malformed, injected, oversized and duplicate values: 400 with the reason, no new account."""
    before = _team(app)
    response = _post(admin, "/staff/team/", data)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert _team(app) == before


def test_forged_or_unknown_actions_change_nothing(app: Flask, admin: FlaskClient) -> None:
    """No token: 400; an unknown account or action: 404."""
    with app.app_context():
        editor_id = db.session.execute(db.select(StaffUser.id).where(StaffUser.role == "editor")).scalar()
    assert admin.post(f"/staff/team/{editor_id}/deactivate").status_code == 400
    assert _post(admin, "/staff/team/999/deactivate").status_code == 404
    assert _post(admin, f"/staff/team/{editor_id}/promote").status_code == 404
    assert _team(app)["editor@example.org"] == ("editor", True)
