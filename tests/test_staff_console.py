"""The staff console: sign-in with rate limits and CSRF, and the dashboard behind it."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask
from flask.testing import FlaskClient

from mailer.digests import cadence
from mailer.extensions import db
from mailer.models import AuditEntry, Feed, Subscriber
from mailer.staff.service import create_staff
from tests.conftest import AuthActions, csrf_token

PASSWORD = "correct horse battery"


def _with_staff(app: Flask) -> None:
    """One editor account and a confirmed subscriber."""
    with app.app_context():
        create_staff("editor@example.org", PASSWORD)
        db.session.add(Subscriber(email="ana@example.org", status="confirmed"))
        db.session.commit()


def _login(client: FlaskClient, email: str, password: str) -> object:
    """Post the sign-in form with a fresh CSRF token."""
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    return client.post("/staff/login", data={"csrf_token": token, "email": email, "password": password})


def test_dashboard_needs_sign_in(app: Flask, client: FlaskClient) -> None:
    """Anonymous visitors are sent to the sign-in page."""
    response = client.get("/staff/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/staff/login")


def test_sign_in_then_dashboard_then_sign_out(app: Flask, client: FlaskClient) -> None:
    """Right credentials open the console, which shows the audience; signing out closes it."""
    _with_staff(app)
    response = _login(client, "Editor@Example.org", PASSWORD)
    assert response.status_code == 302
    assert response.headers["Location"] == "/staff/"
    page = client.get("/staff/").get_data(as_text=True)
    assert "1 confirmed" in page
    with app.app_context():
        assert db.session.execute(db.select(AuditEntry.action).where(AuditEntry.action == "staff.login")).scalar()
    token = csrf_token(page)
    assert client.post("/staff/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/staff/").status_code == 302


def test_wrong_password_and_unknown_address_look_the_same(app: Flask, client: FlaskClient) -> None:
    """Both answer 200 with the same message and no session."""
    _with_staff(app)
    wrong = _login(client, "editor@example.org", "not the password")
    unknown = _login(client, "nobody@example.org", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 200
        assert "do not match an account" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_sign_in_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    """A forged cross-site post gets a 400 page and no session."""
    _with_staff(app)
    response = client.post("/staff/login", data={"email": "editor@example.org", "password": PASSWORD})
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_password_guessing_is_rate_limited(app: Flask, client: FlaskClient) -> None:
    """After ten tries in a minute even the right password is refused with 429."""
    _with_staff(app)
    for _ in range(10):
        _login(client, "editor@example.org", "guess")
    response = _login(client, "editor@example.org", PASSWORD)
    assert response.status_code == 429
    assert client.get("/staff/").status_code == 302


def test_oversized_and_injected_fields_are_form_errors(app: Flask, client: FlaskClient) -> None:
    """A huge or CR/LF-laden address is a form error, not a crash."""
    _with_staff(app)
    for email in ("a" * 5000 + "@example.org", "editor@example.org\r\nX: y"):
        response = _login(client, email, PASSWORD)
        assert response.status_code == 200
    assert client.get("/staff/").status_code == 302


def test_json_body_on_sign_in_is_a_clean_refusal(app: Flask, client: FlaskClient) -> None:
    """A JSON body is not read as the form: even past CSRF it signs nobody in and never crashes."""
    _with_staff(app)
    app.config["WTF_CSRF_ENABLED"] = False
    for body in ([True], {"email": "editor@example.org", "password": PASSWORD}):
        response = client.post("/staff/login", json=body)
        assert response.status_code == 200
        assert "This field is required." in response.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302


def test_control_characters_in_the_address_sign_nobody_in(app: Flask, client: FlaskClient) -> None:
    """A NUL or other control character in the address is a failed sign-in, not a database error."""
    _with_staff(app)
    for email in ("editor@example.org\x00", "\x00", "editor@example.org\x1b"):
        response = _login(client, email, PASSWORD)
        assert response.status_code == 200
        assert "do not match an account" in response.get_data(as_text=True)


def test_dashboard_says_what_runs_by_itself(app: Flask, auth: AuthActions) -> None:
    """No schedule: it says so; a schedule: the next run in ORG_TIMEZONE, and who held it; a failing feed: in words."""
    app.config["ORG_TIMEZONE"] = "Europe/Berlin"
    staff = auth.login()
    page = staff.get("/staff/").get_data(as_text=True)
    assert "No schedule: digests go out when someone sends them." in page
    assert "failing" not in page
    with app.app_context():
        set_on = datetime(2027, 1, 6, 12, 0, tzinfo=UTC)  # a Wednesday: the next run is Monday 11 January, 09:00 CET
        run_at = cadence.set_schedule("weekly mon 09:00", 0, {}, "test", now=set_on).next_run_at
        cadence.hold(run_at, "ann@example.org")
        db.session.add(Feed(url="https://example.org/news.rss", kind="news", failures=3, last_error="HTTP 500"))
        db.session.commit()
    page = staff.get("/staff/").get_data(as_text=True)
    assert "Next scheduled digest: 11 January 2027 09:00 CET" in page
    assert "held by ann@example.org" in page
    assert "1 feed is failing" in page
    assert "https://example.org/news.rss: HTTP 500 (3 in a row)" in page
