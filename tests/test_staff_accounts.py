"""Staff members' own accounts: password change and reset, sessions that really end, sign-in throttles, TOTP."""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash

from mailer import tokens
from mailer.extensions import db
from mailer.models import StaffUser
from mailer.staff.service import RESET_MAX_AGE, set_active
from tests.conftest import STAFF_PASSWORD, AuthActions, CaughtMail, csrf_token

NEW_PASSWORD = "a much better passphrase"
LINK = re.compile(r"http://\S+(/staff/password-reset/[A-Za-z0-9_.\-]+)")


def _user(app: Flask, email: str = "editor@example.org") -> StaffUser:
    """The account at ``email``, detached from the session."""
    with app.app_context():
        user = db.session.execute(db.select(StaffUser).where(StaffUser.email == email)).scalar_one()
        db.session.expunge(user)
        return user


def _signed_in(client: FlaskClient) -> bool:
    """Whether ``client`` can open the console."""
    return client.get("/staff/").status_code == 200


def _post_form(client: FlaskClient, page: str, data: dict[str, str], action: str | None = None) -> object:
    """Submit the form of ``page`` (with its CSRF token) to ``action`` or back to the page."""
    token = csrf_token(client.get(page).get_data(as_text=True))
    return client.post(action or page, data={"csrf_token": token, **data})


def _login(client: FlaskClient, email: str, password: str = STAFF_PASSWORD, ip: str = "127.0.0.1") -> object:
    """Post the sign-in form from ``ip``."""
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    return client.post(
        "/staff/login", data={"csrf_token": token, "email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )  # fmt: skip


def _change(auth: AuthActions, current: str, new: str, confirm: str | None = None) -> object:
    """Post the change-password form as the signed-in member."""
    data = {"current_password": current, "new_password": new, "confirm": new if confirm is None else confirm}
    return _post_form(auth.client, "/staff/account", data, "/staff/account/password")


def test_change_password_signs_out_every_other_session(app: Flask, auth: AuthActions) -> None:
    """Wrong current password, the same password or two different new ones change nothing; a good change keeps
    this session and ends the others."""
    client = auth.login()
    other = AuthActions(app, app.test_client()).login(role=None)
    before = _user(app)
    assert _change(auth, "not the password at all", NEW_PASSWORD).status_code == 400
    assert _change(auth, STAFF_PASSWORD, STAFF_PASSWORD).status_code == 400
    assert _change(auth, STAFF_PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x").status_code == 400
    assert _change(auth, STAFF_PASSWORD, "too short").status_code == 400
    assert _user(app).password_hash == before.password_hash
    response = _change(auth, STAFF_PASSWORD, NEW_PASSWORD)
    assert (response.status_code, response.headers["Location"]) == (303, "/staff/account")
    assert _signed_in(client)
    assert not _signed_in(other)
    after = _user(app)
    assert check_password_hash(after.password_hash, NEW_PASSWORD)
    assert after.session_version == before.session_version + 1 and after.password_changed_at is not None
    fresh = app.test_client()
    assert _login(fresh, "editor@example.org").status_code == 200
    assert _login(fresh, "editor@example.org", NEW_PASSWORD).status_code == 302


def test_a_copied_cookie_stops_working_after_sign_out(app: Flask, auth: AuthActions) -> None:
    """The session cookie from before sign-out, replayed in another client, no longer opens the console."""
    client = auth.login()
    stolen = app.test_client()
    stolen.set_cookie("session", client.get_cookie("session").value)
    assert _signed_in(stolen)
    assert auth.post("/staff/logout").status_code == 302
    assert not _signed_in(client)
    assert not _signed_in(stolen)


def _reset_link(mailbox: CaughtMail, address: str, count: int) -> str:
    """The path of the reset link in the ``count``-th email, which must be to ``address``."""
    message = mailbox.wait_for(count)[count - 1]
    assert address in str(message["To"])
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    path = LINK.search(text).group(1)
    assert path in html
    return path


def _old_link(app: Flask, path: str, age: int) -> str:
    """The same link (same account and nonce), signed ``age`` seconds ago."""
    with app.test_request_context():
        payload = tokens.read_token("password-reset", path.rsplit("/", 1)[1])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tokens, "time", SimpleNamespace(time=lambda: time.time() - age))
            return "/staff/password-reset/" + tokens.make_token("password-reset", payload)


def test_reset_link_works_once_and_not_after_an_hour(
    app: Flask, client: FlaskClient, auth: AuthActions, mailbox: CaughtMail, celery_worker: object
) -> None:
    """The email arrives through SMTP; the link sets a new password once, ends every session, and an hour-old
    copy of it is refused."""
    auth.create()
    other = AuthActions(app, app.test_client()).login(role=None)
    response = _post_form(client, "/staff/password-reset", {"email": "EDITOR@example.org"})
    assert response.status_code == 200 and "If that address belongs" in response.get_data(as_text=True)
    path = _reset_link(mailbox, "editor@example.org", 1)
    assert mailbox.messages[0]["Subject"].startswith("Reset your password")
    assert client.get(_old_link(app, path, RESET_MAX_AGE + 1)).status_code == 404
    assert client.get(path).status_code == 200
    assert _post_form(client, path, {"new_password": NEW_PASSWORD, "confirm": "different thing"}).status_code == 400
    response = _post_form(client, path, {"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert (response.status_code, response.headers["Location"]) == (303, "/staff/login")
    assert not _signed_in(other)
    assert client.get(path).status_code == 404
    assert client.post(path, data={"new_password": "x" * 20, "confirm": "x" * 20}).status_code in (400, 404)
    user = _user(app)
    assert check_password_hash(user.password_hash, NEW_PASSWORD) and user.password_reset_nonce_hash is None
    assert _login(app.test_client(), "editor@example.org", NEW_PASSWORD).status_code == 302


def test_no_reset_for_a_switched_off_account(
    app: Flask, client: FlaskClient, auth: AuthActions, mailbox: CaughtMail, celery_worker: object
) -> None:
    """A switched-off account gets no email, and a link sent before it was switched off stops working."""
    auth.create("boss@example.org", role="admin")
    auth.create()
    _post_form(client, "/staff/password-reset", {"email": "editor@example.org"})
    path = _reset_link(mailbox, "editor@example.org", 1)
    with app.app_context():
        boss = db.session.execute(db.select(StaffUser).where(StaffUser.role == "admin")).scalar_one()
        editor = db.session.execute(db.select(StaffUser).where(StaffUser.role == "editor")).scalar_one()
        set_active(editor, False, boss)
    assert client.get(path).status_code == 404
    _post_form(client, "/staff/password-reset", {"email": "editor@example.org"})
    _post_form(client, "/staff/password-reset", {"email": "boss@example.org"})
    _reset_link(mailbox, "boss@example.org", 2)  # the worker took the requests in order
    time.sleep(0.3)
    assert [str(m["To"]) for m in mailbox.messages] == ["editor@example.org", "boss@example.org"]


def test_reset_request_answers_alike_for_every_address(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    """Known, unknown and over-budget addresses get the same answer."""
    auth.create()
    answers = set()
    for address in ["editor@example.org", "nobody@example.org", "editor@example.org", "editor@example.org",
                    "editor@example.org"]:  # fmt: skip
        response = _post_form(client, "/staff/password-reset", {"email": address})
        answers.add((response.status_code, response.get_data(as_text=True)))
    assert len(answers) == 1


def test_failed_sign_ins_are_throttled_per_account(app: Flask, auth: AuthActions) -> None:
    """Ten wrong passwords from ten addresses lock the account (not others) for a while, with the same message
    as for an address with no account."""
    auth.create()
    auth.create("other@example.org")
    for i in range(10):
        assert _login(app.test_client(), "editor@example.org", "wrong password!", ip=f"10.0.0.{i}").status_code == 200
    response = _login(app.test_client(), "Editor@example.org", STAFF_PASSWORD, ip="10.0.1.1")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    assert _login(app.test_client(), "other@example.org", ip="10.0.0.1").status_code == 302
    for i in range(10):
        _login(app.test_client(), "ghost@example.org", "wrong password!", ip=f"10.0.2.{i}")
    ghost = _login(app.test_client(), "ghost@example.org", "wrong password!", ip="10.0.3.1")
    assert ghost.status_code == 429
    assert "Too many failed sign-ins" in ghost.get_data(as_text=True)


def test_successful_sign_ins_do_not_use_up_the_budget(app: Flask, auth: AuthActions) -> None:
    """Twelve good sign-ins in a row all work."""
    auth.create()
    for i in range(12):
        assert _login(app.test_client(), "editor@example.org", ip=f"10.0.4.{i}").status_code == 302


def _setup(client: FlaskClient) -> tuple[str, str]:
    """The account page's signed set-up value and the secret it shows."""
    html = client.get("/staff/account").get_data(as_text=True)
    setup = re.search(r'name="setup" type="hidden" value="([^"]+)"', html) or re.search(
        r'id="setup" name="setup" type="hidden" value="([^"]+)"', html
    )
    secret = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', html)
    assert setup and secret, html
    return setup.group(1), secret.group(1).replace(" ", "")


def _enable(client: FlaskClient, setup: str, code: str) -> object:
    """Post the set-up form."""
    return _post_form(client, "/staff/account", {"setup": setup, "code": code}, "/staff/account/totp")


def _code(client: FlaskClient, code: str) -> object:
    """Post the second sign-in step."""
    return _post_form(client, "/staff/login/code", {"code": code})


def test_totp_for_admins(app: Flask, auth: AuthActions) -> None:
    """A wrong code does not turn it on; then sign-in needs a code, once per code, from this secret only."""
    client = auth.login("boss@example.org", role="admin")
    setup, secret = _setup(client)
    totp = pyotp.TOTP(secret)
    assert _enable(client, setup, "000000" if totp.now() != "000000" else "111111").status_code == 400
    assert _enable(client, setup, pyotp.TOTP(pyotp.random_base32()).now()).status_code == 400
    assert _user(app, "boss@example.org").totp_secret is None
    confirming = totp.now()
    assert _enable(client, setup, confirming).status_code == 303
    stored = _user(app, "boss@example.org").totp_secret
    assert stored and secret not in stored  # encrypted at rest
    assert _enable(client, setup, totp.at(time.time() + 30)).status_code == 400  # on already: not replaced
    assert _user(app, "boss@example.org").totp_secret == stored
    auth.post("/staff/logout")

    response = _login(client, "boss@example.org")
    assert response.headers["Location"] == "/staff/login/code"
    assert not _signed_in(client)
    assert _code(client, confirming).status_code == 200  # the code that turned it on was used already
    assert _code(client, pyotp.TOTP(pyotp.random_base32()).at(time.time() + 30)).status_code == 200
    assert not _signed_in(client)
    following = totp.at(time.time() + 30)
    assert client.post("/staff/login/code", data={"code": following}).status_code == 400  # no CSRF token
    assert _code(client, "9" * 5000).status_code == 400
    response = _code(client, following)
    assert (response.status_code, response.headers["Location"]) == (302, "/staff/")
    assert _signed_in(client)
    auth.post("/staff/logout")

    _login(client, "boss@example.org")
    assert _code(client, following).status_code == 200  # replayed
    assert not _signed_in(client)


def test_editors_cannot_turn_totp_on(app: Flask, auth: AuthActions) -> None:
    """The set-up form is for admins only."""
    client = auth.login()
    assert "Two-step" not in client.get("/staff/account").get_data(as_text=True)
    assert _enable(client, "x", "123456").status_code == 403


def test_code_step_needs_a_password_first(client: FlaskClient) -> None:
    """Without a password given a moment ago, the code page sends back to sign in."""
    response = client.get("/staff/login/code")
    assert (response.status_code, response.headers["Location"]) == (302, "/staff/login")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD},
        {"current_password": STAFF_PASSWORD, "new_password": "y" * 2000, "confirm": "y" * 2000},
        {"current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD + "\x00", "confirm": NEW_PASSWORD + "\x00"},
        {"current_password": STAFF_PASSWORD + "\n", "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        {"csrf_token": "", "current_password": STAFF_PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    ],
)
def test_bad_change_password_input_changes_nothing(app: Flask, auth: AuthActions, data: dict[str, str]) -> None:
    """Missing, oversized, control characters or no CSRF token: 400 and the same password."""
    client = auth.login()
    before = _user(app)
    if "csrf_token" in data:
        response = client.post("/staff/account/password", data=data)
    else:
        response = _post_form(client, "/staff/account", data, "/staff/account/password")
    assert response.status_code == 400
    after = _user(app)
    assert (after.password_hash, after.session_version) == (before.password_hash, before.session_version)


@pytest.mark.parametrize(
    "data",
    [{}, {"email": "a" * 250 + "@example.org"}, {"email": "editor@example.org\r\nBcc: x@example.org"},
     {"email": "editor@example.org\x00"}, {"csrf_token": "", "email": "editor@example.org"}],
)  # fmt: skip
def test_bad_reset_request_sends_nothing(
    app: Flask, client: FlaskClient, auth: AuthActions, data: dict[str, str]
) -> None:
    """Bad input on the reset request: 400 and no link armed."""
    auth.create()
    if "csrf_token" in data:
        response = client.post("/staff/password-reset", data=data)
    else:
        response = _post_form(client, "/staff/password-reset", data)
    assert response.status_code == 400
    assert _user(app).password_reset_nonce_hash is None


def test_bad_reset_links_and_new_passwords(
    app: Flask, client: FlaskClient, auth: AuthActions, mailbox: CaughtMail, celery_worker: object
) -> None:
    """Forged or oversized links are 404; bad new passwords are 400 and keep the link armed."""
    auth.create()
    for token in ["x", "a" * 600, "abc.def.ghi", "%00"]:
        assert client.get("/staff/password-reset/" + token).status_code == 404
    _post_form(client, "/staff/password-reset", {"email": "editor@example.org"})
    path = _reset_link(mailbox, "editor@example.org", 1)
    for data in [{}, {"new_password": "short", "confirm": "short"}, {"new_password": "z" * 2000, "confirm": "z" * 2000},
                 {"new_password": NEW_PASSWORD + "\x07", "confirm": NEW_PASSWORD + "\x07"}]:  # fmt: skip
        assert _post_form(client, path, data).status_code == 400
    assert client.post(path, data={"new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD}).status_code == 400
    user = _user(app)
    assert check_password_hash(user.password_hash, STAFF_PASSWORD) and user.password_reset_nonce_hash


@pytest.mark.parametrize(
    "code", ["", "12345", "1234567", "abcdef", "12 34 56", "１２３４５６", "123456\x00", "9" * 5000]
)
def test_bad_codes_are_refused(app: Flask, auth: AuthActions, code: str) -> None:
    """Bad set-up codes, a forged set-up value or no CSRF token: 400 and two-step sign-in stays off."""
    client = auth.login("boss@example.org", role="admin")
    setup, _ = _setup(client)
    assert _enable(client, setup, code).status_code in (400, 413)
    assert client.post("/staff/account/totp", data={"setup": setup, "code": code}).status_code == 400
    assert _user(app, "boss@example.org").totp_secret is None
    assert _enable(client, "forged", "123456").status_code == 400


def test_totp_can_be_turned_off_with_the_password(app: Flask, auth: AuthActions) -> None:
    """A wrong password leaves it on; the right one turns it off and sign-in needs the password only."""
    client = auth.login("boss@example.org", role="admin")
    setup, secret = _setup(client)
    assert _enable(client, setup, pyotp.TOTP(secret).now()).status_code == 303
    off = "/staff/account/totp/off"
    assert _post_form(client, "/staff/account", {"password": "not the password"}, off).status_code == 400
    assert _post_form(client, "/staff/account", {}, off).status_code == 400
    assert _user(app, "boss@example.org").totp_secret is not None
    assert _post_form(client, "/staff/account", {"password": STAFF_PASSWORD}, off).status_code == 303
    assert _user(app, "boss@example.org").totp_secret is None
    auth.post("/staff/logout")
    assert _login(client, "boss@example.org").headers["Location"] == "/staff/"


def test_sign_in_posts_stay_limited_per_client(app: Flask, client: FlaskClient) -> None:
    """The per-client limit on the sign-in form still holds now that the view lives in account.py."""
    statuses = [_login(client, "nobody@example.org", "wrong password!").status_code for _ in range(11)]
    assert statuses == [200] * 10 + [429]
