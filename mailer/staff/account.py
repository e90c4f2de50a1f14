"""Staff members' own account: signing in (with a code for admins who turned TOTP on) and out,
changing the password, a forgotten password reset by email, and two-step sign-in.

Sign-in and sign-out keep their endpoints ``staff.login`` and ``staff.logout`` (views.py registers
them on the console's blueprint); everything else here is ``staff.account.*``.
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from ..extensions import db, limiter
from ..models import StaffUser
from ..tokens import TokenInvalid, make_token, read_token
from . import service
from .auth import RESET_ADDRESS, RESET_NETWORK, refund, spend
from .forms import (
    ChangePasswordForm,
    CodeForm,
    LoginForm,
    NewPasswordForm,
    ResetRequestForm,
    TotpOffForm,
    TotpSetupForm,
)
from .tasks import send_password_reset_email

bp = Blueprint("account", __name__)

#: Where a signed-in password waits for its code: [account id, session version, when].
PENDING = "staff_pending_sign_in"
#: Seconds between the password and the code, and for setting up an authenticator app.
CODE_WAIT = 300
SETUP_WAIT = 900
TOO_MANY = "Too many failed sign-ins. Wait 15 minutes and try again."
WRONG = "That email and password do not match an account."


def _form_data() -> object:
    """The posted form fields, or None on GET (Flask-WTF would otherwise read a JSON body as form data)."""
    return request.form if request.method == "POST" else None


def _sign_in(user: StaffUser) -> Response:
    """Start the session of ``user``, who gave every factor, and open the console."""
    session.pop(PENDING, None)
    service.record_sign_in(user, request.remote_addr)
    login_user(user)
    return redirect(url_for("staff.dashboard"))


@limiter.limit("10 per minute", methods=["POST"])
def login() -> str | Response | tuple[str, int]:
    """Sign in with email and password (then a code, for an account with TOTP on)."""
    form = LoginForm(formdata=_form_data())
    if not form.validate_on_submit():
        return render_template("staff/login.html", form=form), 200
    email, ip = form.email.data or "", request.remote_addr
    if not spend(email, ip):
        form.password.errors.append(TOO_MANY)
        return render_template("staff/login.html", form=form), 429
    user = service.check_password(email, form.password.data or "")
    if user is None:
        form.password.errors.append(WRONG)
        return render_template("staff/login.html", form=form), 200
    refund(email, ip)
    if user.totp_secret is None:
        return _sign_in(user)
    session[PENDING] = [user.id, user.session_version, int(time.time())]
    return redirect(url_for("staff.account.login_code"))


def _pending_user() -> StaffUser | None:
    """The account whose password was given in this session a moment ago, still at the same version."""
    pending = session.get(PENDING)
    if not (isinstance(pending, list) and len(pending) == 3 and all(isinstance(v, int) for v in pending)):
        return None
    user_id, version, since = pending
    user = db.session.get(StaffUser, user_id) if 0 < user_id < 2**31 else None
    fresh = time.time() - since < CODE_WAIT
    return user if fresh and user is not None and user.active and user.session_version == version else None


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def login_code() -> str | Response | tuple[str, int]:
    """The second step: the code of the authenticator app, once per code."""
    user = _pending_user()
    if user is None:
        session.pop(PENDING, None)
        flash("Please sign in again.")
        return redirect(url_for("staff.login"))
    form = CodeForm(formdata=_form_data())
    if not form.validate_on_submit():
        return render_template("staff/login_code.html", form=form), 400 if request.method == "POST" else 200
    ip = request.remote_addr
    if not spend(user.email, ip):
        form.code.errors.append(TOO_MANY)
        return render_template("staff/login_code.html", form=form), 429
    if not service.verify_totp(user, (form.code.data or "").strip()):
        form.code.errors.append("That code is not right, or was used already: wait for the next one.")
        return render_template("staff/login_code.html", form=form), 200
    refund(user.email, ip)
    return _sign_in(user)


@login_required
def logout() -> Response:
    """Sign out, here and in every other session of the account."""
    service.end_sessions(current_user, request.remote_addr)
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("staff.login"))


def _setup_form(form: TotpSetupForm | None = None) -> tuple[TotpSetupForm, str]:
    """The TOTP set-up form carrying a new signed secret (or the one being confirmed), and that secret."""
    form = form or TotpSetupForm(formdata=None)
    secret = _setup_secret(form.setup.data or "")
    if secret is None:
        secret = service.new_totp_secret()
        form.setup.data = make_token("totp-setup", [current_user.id, secret])
    return form, secret


def _setup_secret(token: str) -> str | None:
    """The secret a set-up token carries, if it was made for this account in the last SETUP_WAIT seconds."""
    try:
        payload = read_token("totp-setup", token, max_age=SETUP_WAIT)
    except TokenInvalid:
        return None
    if isinstance(payload, list) and len(payload) == 2 and payload[0] == current_user.id:
        return str(payload[1])
    return None


def _account_page(status: int = 200, **forms: object) -> tuple[str, int]:
    """The account page: change the password; for admins, two-step sign-in (set up, or turn off)."""
    context: dict[str, object] = {
        "password_form": forms.get("password") or ChangePasswordForm(formdata=None),
        "off_form": forms.get("off") or TotpOffForm(formdata=None),
    }
    if current_user.role == "admin" and current_user.totp_secret is None:
        setup_form, secret = _setup_form(forms.get("setup"))  # type: ignore[arg-type]
        context.update(
            setup_form=setup_form,
            secret_groups=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            totp_uri=service.totp_uri(current_user, secret),
        )
    return render_template("staff/account.html", **context), status


@bp.get("/account")
@login_required
def account() -> tuple[str, int]:
    """The signed-in member's own account."""
    return _account_page()


def _form_error(field: object, exc: service.StaffError) -> None:
    """Show a service's refusal under ``field`` as a sentence."""
    field.errors.append(str(exc)[:1].upper() + str(exc)[1:] + ".")  # type: ignore[attr-defined]


@bp.post("/account/password")
@login_required
def change_password() -> tuple[str, int] | Response:
    """A new password; this session carries on, every other one ends."""
    form = ChangePasswordForm(formdata=request.form)
    if not form.validate():
        return _account_page(400, password=form)
    email, ip = current_user.email, request.remote_addr
    if not spend(email, ip):
        form.current_password.errors.append(TOO_MANY)
        return _account_page(429, password=form)
    try:
        service.change_password(current_user, form.current_password.data or "", form.new_password.data or "", ip)
    except service.StaffError as exc:
        _form_error(form.current_password, exc)
        return _account_page(400, password=form)
    refund(email, ip)
    login_user(db.session.get(StaffUser, current_user.id))  # this session moves to the new version
    flash("Your password is changed. Every other session of your account is signed out.")
    return redirect(url_for(".account"), 303)


@bp.post("/account/totp")
@login_required
def enable_totp() -> tuple[str, int] | Response:
    """Turn on two-step sign-in once a code shows the authenticator app has the secret (admins)."""
    if current_user.role != "admin":
        abort(403)
    form = TotpSetupForm(formdata=request.form)
    secret = _setup_secret(form.setup.data or "") if form.validate() else None
    if secret is None:
        return _account_page(400, setup=form)
    try:
        service.enable_totp(current_user, secret, (form.code.data or "").strip(), request.remote_addr)
    except service.StaffError as exc:
        _form_error(form.code, exc)
        return _account_page(400, setup=form)
    flash("Two-step sign-in is on: signing in will ask for a code from your app.")
    return redirect(url_for(".account"), 303)


@bp.post("/account/totp/off")
@login_required
def disable_totp() -> tuple[str, int] | Response:
    """Turn two-step sign-in off, with the current password."""
    form = TotpOffForm(formdata=request.form)
    if not form.validate() or current_user.totp_secret is None:
        return _account_page(400, off=form)
    try:
        service.disable_totp(current_user, form.password.data or "", request.remote_addr)
    except service.StaffError as exc:
        _form_error(form.password, exc)
        return _account_page(400, off=form)
    flash("Two-step sign-in is off.")
    return redirect(url_for(".account"), 303)


@bp.route("/password-reset", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def password_reset() -> str | tuple[str, int]:
    """Ask for a reset link; the answer is the same whether or not the address has an account."""
    form = ResetRequestForm(formdata=_form_data())
    if not form.validate_on_submit():
        return render_template("staff/password_reset.html", form=form), 400 if request.method == "POST" else 200
    address = (form.email.data or "").strip()
    if not spend(address, request.remote_addr, RESET_ADDRESS, RESET_NETWORK):
        # Counted for every address alike, so being over budget tells nothing about an account either.
        current_app.logger.info("password reset request over budget")
    else:
        send_password_reset_email.delay(address)
    return render_template("staff/password_reset.html", form=None), 200


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"])
def password_reset_link(token: str) -> str | tuple[str, int] | Response:
    """A reset link's page: a new password, typed twice; the link works once, for an hour."""
    try:
        service.reset_account(token)
    except service.StaffError as exc:
        return render_template("staff/password_reset_new.html", form=None, problem=str(exc)), 404
    form = NewPasswordForm(formdata=_form_data())
    if not form.validate_on_submit():
        return render_template("staff/password_reset_new.html", form=form), 400 if request.method == "POST" else 200
    try:
        service.reset_password(token, form.new_password.data or "", request.remote_addr)
    except service.StaffError as exc:
        return render_template("staff/password_reset_new.html", form=None, problem=str(exc)), 404
    flash("Your password is changed and every session of your account is signed out. Sign in with the new one.")
    return redirect(url_for("staff.login"), 303)
