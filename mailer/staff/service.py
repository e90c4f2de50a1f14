"""Staff accounts: creation with checked input and hashed passwords, sessions, password resets, TOTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from functools import lru_cache

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import func, or_
from werkzeug.security import check_password_hash, generate_password_hash

from .. import mail
from ..extensions import db
from ..models import STAFF_ROLES, AuditEntry, StaffUser, utcnow
from ..tokens import TokenInvalid, make_token, read_token

MIN_PASSWORD = 12
MAX_PASSWORD = 1024


def _hash(password: str) -> str:
    """A password's hash by PASSWORD_HASH_METHOD (Werkzeug's scrypt; the tests choose a cheaper one)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@lru_cache(maxsize=4)
def _no_account_hash(method: str) -> str:
    """Checked when no account matches, so a wrong address takes as long as a wrong password."""
    return generate_password_hash("no account has this password", method=method)


#: A password-reset link works for an hour, once.
RESET_MAX_AGE = 3600
#: Where a password-reset link points (the route in account.py), under BASE_URL.
RESET_PATH = "/staff/password-reset/"
#: Digits of a TOTP code; codes one time step either side of now are accepted too (valid_window=1).
TOTP_DIGITS = 6
TOTP_WINDOW = 1
_LINK_PROBLEM = "this link has expired or was already used: ask for a new one"


class StaffError(ValueError):
    """Input that cannot make a staff account; the message says why in plain words, ``field`` which input."""

    def __init__(self, message: str, field: str = "email") -> None:
        super().__init__(message)
        self.field = field


def _check_new_password(password: str) -> None:
    """Raise StaffError unless ``password`` is long enough and not absurdly long."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StaffError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long", "password")


def find_staff(email: str) -> StaffUser | None:
    """The staff account for ``email`` regardless of case, or None."""
    return db.session.execute(
        db.select(StaffUser).where(func.lower(StaffUser.email) == email.strip().lower())
    ).scalar_one_or_none()


def create_staff(email: str, password: str, role: str = "editor", actor: str = "cli") -> StaffUser:
    """Create and commit a staff account; raise StaffError on bad input or a taken address."""
    try:
        address = validate_email(email, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise StaffError(f"not a valid email address: {exc}") from None
    if role not in STAFF_ROLES:
        raise StaffError(f"role must be one of {', '.join(STAFF_ROLES)}", "role")
    _check_new_password(password)
    if find_staff(address) is not None:
        raise StaffError(f"a staff account for {address} already exists")
    user = StaffUser(email=address, password_hash=_hash(password), role=role)
    db.session.add(user)
    db.session.add(AuditEntry(actor=actor, action="staff.create", target=address, detail={"role": role}))
    db.session.commit()
    return user


def check_password(email: str, password: str) -> StaffUser | None:
    """The active account whose password matches; otherwise None (after the same work either way)."""
    # An address with control characters matches no account (PostgreSQL would refuse a NUL).
    user = find_staff(email) if email.isprintable() else None
    stored = user.password_hash if user else _no_account_hash(current_app.config["PASSWORD_HASH_METHOD"])
    valid = check_password_hash(stored, password)
    if user is None or not valid or not user.active:
        return None
    return user


def record_sign_in(user: StaffUser, ip: str | None) -> None:
    """Note a completed sign-in (password, and code when the account has TOTP) in the account and the audit log."""
    user.last_login_at = utcnow()
    db.session.add(AuditEntry(actor=user.email, action="staff.login", target=user.email, ip=ip))
    db.session.commit()


def _bump_session_version(user: StaffUser) -> None:
    """End every session of ``user`` signed in so far (in the caller's transaction, safe against a race)."""
    db.session.execute(
        db.update(StaffUser).where(StaffUser.id == user.id).values(session_version=StaffUser.session_version + 1)
    )


def end_sessions(user: StaffUser, ip: str | None) -> None:
    """Sign ``user`` out everywhere: a copy of any earlier session cookie stops working."""
    _bump_session_version(user)
    db.session.add(AuditEntry(actor=user.email, action="staff.logout", target=user.email, ip=ip))
    db.session.commit()


def set_active(user: StaffUser, active: bool, actor: StaffUser) -> None:
    """Let an account sign in again or stop it from signing in; nobody can lock themselves out."""
    if user.id == actor.id and not active:
        raise StaffError("you cannot deactivate your own account")
    if user.active == active:
        return
    user.active = active
    if not active:
        _bump_session_version(user)
    action = "staff.activate" if active else "staff.deactivate"
    db.session.add(AuditEntry(actor=actor.email, action=action, target=user.email))
    db.session.commit()


def change_password(user: StaffUser, current: str, new: str, ip: str | None) -> None:
    """Give ``user`` a new password when ``current`` is right; every session of the account ends."""
    if not check_password_hash(user.password_hash, current):
        raise StaffError("the current password is not right")
    _check_new_password(new)
    if new == current:
        raise StaffError("the new password must differ from the current one")
    _set_password(user, new)
    db.session.add(AuditEntry(actor=user.email, action="staff.password_change", target=user.email, ip=ip))
    db.session.commit()


def _set_password(user: StaffUser, password: str) -> None:
    """Store a new password hash, forget any reset link and end every session (caller commits)."""
    user.password_hash = _hash(password)
    user.password_reset_nonce_hash = None
    user.password_changed_at = utcnow()
    db.session.flush()
    _bump_session_version(user)


def _digest(nonce: str) -> str:
    """What is stored of a reset nonce: its SHA-256 (the nonce is random, so no slow hash is needed)."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def begin_password_reset(address: str) -> tuple[StaffUser, str] | None:
    """Arm a new reset link for the active account at ``address`` (voiding older ones); None if there is none.

    Returns the account and the link's URL.
    """
    user = find_staff(address) if address.isprintable() else None
    if user is None or not user.active:
        return None
    nonce = secrets.token_urlsafe(24)
    user.password_reset_nonce_hash = _digest(nonce)
    db.session.add(AuditEntry(actor=user.email, action="staff.password_reset_sent", target=user.email))
    db.session.commit()
    url = current_app.config["BASE_URL"] + RESET_PATH + make_token("password-reset", [user.id, nonce])
    return user, url


def send_password_reset(user: StaffUser, reset_url: str) -> None:
    """Email ``user`` the reset link; raise the transport's SMTP errors."""
    config = current_app.config
    rendered = mail.render_email(
        "password_reset", org_name=config["ORG_NAME"], email=user.email, reset_url=reset_url,
        valid_for=f"{RESET_MAX_AGE // 60} minutes", show_subscription_links=False,
    )  # fmt: skip
    subject = f"Reset your password for the {config['ORG_NAME']} console"
    mail.send_message(mail.message_factory(rendered, subject), user.email, {})


def reset_account(token: str) -> tuple[StaffUser, str]:
    """The account a reset link is for and the link's nonce digest; StaffError when it is bad, old or used."""
    try:
        payload = read_token("password-reset", token, max_age=RESET_MAX_AGE)
    except TokenInvalid:
        raise StaffError(_LINK_PROBLEM) from None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[1], str)):
        raise StaffError(_LINK_PROBLEM)
    user_id, digest = payload[0], _digest(payload[1])
    user = db.session.get(StaffUser, user_id) if isinstance(user_id, int) and 0 < user_id < 2**31 else None
    stored = user.password_reset_nonce_hash if user is not None and user.active else None
    if stored is None or not hmac.compare_digest(stored, digest):
        raise StaffError(_LINK_PROBLEM)
    return user, digest


def reset_password(token: str, new: str, ip: str | None) -> StaffUser:
    """Set a new password through a reset link, once; every session of the account ends."""
    user, digest = reset_account(token)
    _check_new_password(new)
    # Only the request that clears this nonce wins: the link works once even when opened twice at a time.
    cleared = db.session.execute(
        db.update(StaffUser)
        .where(StaffUser.id == user.id, StaffUser.password_reset_nonce_hash == digest, StaffUser.active.is_(True))
        .values(password_reset_nonce_hash=None)
    )
    if cleared.rowcount != 1:
        db.session.rollback()
        raise StaffError(_LINK_PROBLEM)
    _set_password(user, new)
    db.session.add(AuditEntry(actor=user.email, action="staff.password_reset", target=user.email, ip=ip))
    db.session.commit()
    return user


@lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    """The cipher for TOTP secrets at rest, keyed from SECRET_KEY (a database dump alone cannot make codes)."""
    key = hmac.new(secret_key.encode(), b"mailer.totp-secret", hashlib.sha256).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def _cipher() -> Fernet:
    """This app's TOTP cipher."""
    return _fernet(str(current_app.config["SECRET_KEY"]))


def new_totp_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def totp_uri(user: StaffUser, secret: str) -> str:
    """The otpauth:// URI an authenticator app takes."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=current_app.config["ORG_NAME"])


def _matching_step(secret: str, code: str) -> int | None:
    """The time step (now, or TOTP_WINDOW either side, as pyotp's valid_window) whose code is ``code``."""
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS)
    now = int(time.time()) // totp.interval
    for step in range(now - TOTP_WINDOW, now + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def enable_totp(user: StaffUser, secret: str, code: str, ip: str | None) -> None:
    """Turn on two-step sign-in for an admin once ``code`` shows their app has ``secret``."""
    if user.role != "admin":
        raise StaffError("two-step sign-in is for admins")
    if user.totp_secret is not None:
        raise StaffError("two-step sign-in is on already: turn it off first to use another app")
    step = _matching_step(secret, code)
    if step is None:
        raise StaffError("that code is not right: enter the code your app shows now")
    user.totp_secret = _cipher().encrypt(secret.encode()).decode()
    user.totp_last_step = step  # the confirming code cannot sign anyone in
    db.session.add(AuditEntry(actor=user.email, action="staff.totp_enable", target=user.email, ip=ip))
    db.session.commit()


def disable_totp(user: StaffUser, password: str, ip: str | None) -> None:
    """Turn two-step sign-in off, when ``password`` is the account's."""
    if not check_password_hash(user.password_hash, password):
        raise StaffError("the current password is not right")
    user.totp_secret = None
    user.totp_last_step = None
    db.session.add(AuditEntry(actor=user.email, action="staff.totp_disable", target=user.email, ip=ip))
    db.session.commit()


def verify_totp(user: StaffUser, code: str) -> bool:
    """Whether ``code`` is the account's current code and was not used before (it cannot be used again)."""
    if user.totp_secret is None:
        return False
    try:
        secret = _cipher().decrypt(user.totp_secret.encode()).decode()
    except InvalidToken:
        current_app.logger.error("the TOTP secret of staff account %s does not decrypt (SECRET_KEY changed?)", user.id)
        return False
    step = _matching_step(secret, code)
    if step is None:
        return False
    # A conditional UPDATE: of two requests with the same code, only one moves the last step forward.
    used = db.session.execute(
        db.update(StaffUser)
        .where(StaffUser.id == user.id, or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step)
    )
    db.session.commit()
    return used.rowcount == 1
