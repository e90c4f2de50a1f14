"""Staff accounts: creation with checked input and hashed passwords."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import STAFF_ROLES, AuditEntry, StaffUser, utcnow

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# Checked when no account matches, so a wrong address takes as long as a wrong password.
_NO_ACCOUNT_HASH = generate_password_hash("no account has this password")


class StaffError(ValueError):
    """Input that cannot make a staff account; the message says why in plain words."""


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
        raise StaffError(f"role must be one of {', '.join(STAFF_ROLES)}")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StaffError(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    if find_staff(address) is not None:
        raise StaffError(f"a staff account for {address} already exists")
    user = StaffUser(email=address, password_hash=generate_password_hash(password), role=role)
    db.session.add(user)
    db.session.add(AuditEntry(actor=actor, action="staff.create", target=address, detail={"role": role}))
    db.session.commit()
    return user


def authenticate(email: str, password: str, ip: str | None) -> StaffUser | None:
    """The active account whose password matches, with the sign-in recorded; otherwise None."""
    # An address with control characters matches no account (PostgreSQL would refuse a NUL).
    user = find_staff(email) if email.isprintable() else None
    valid = check_password_hash(user.password_hash if user else _NO_ACCOUNT_HASH, password)
    if user is None or not valid or not user.active:
        return None
    user.last_login_at = utcnow()
    db.session.add(AuditEntry(actor=user.email, action="staff.login", target=user.email, ip=ip))
    db.session.commit()
    return user


def set_active(user: StaffUser, active: bool, actor: StaffUser) -> None:
    """Let an account sign in again or stop it from signing in; nobody can lock themselves out."""
    if user.id == actor.id and not active:
        raise StaffError("you cannot deactivate your own account")
    if user.active == active:
        return
    user.active = active
    action = "staff.activate" if active else "staff.deactivate"
    db.session.add(AuditEntry(actor=actor.email, action=action, target=user.email))
    db.session.commit()
