"""Staff accounts from the command line: created once, bad input refused with a clear message."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from werkzeug.security import check_password_hash

from mailer.config import DEFAULTS
from mailer.extensions import db
from mailer.models import AuditEntry, StaffUser

PASSWORD = "correct horse battery"


def _staff(app: Flask) -> list[StaffUser]:
    """Every staff account."""
    with app.app_context():
        return list(db.session.execute(db.select(StaffUser)).scalars())


def test_create_with_password_from_stdin(app: Flask, runner: FlaskCliRunner) -> None:
    """The account exists with a hashed password, the role asked for, and an audit entry."""
    result = runner.invoke(
        args=["staff", "create", "Editor@Example.org", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "created admin Editor@example.org" in result.output
    [user] = _staff(app)
    assert user.role == "admin"
    assert user.password_hash != PASSWORD
    assert check_password_hash(user.password_hash, PASSWORD)
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry)).scalar_one()
        assert (entry.action, entry.target) == ("staff.create", "Editor@example.org")


def test_passwords_are_hashed_with_scrypt_outside_the_tests(app: Flask, runner: FlaskCliRunner) -> None:
    """The installation's default method is Werkzeug's scrypt (N=2^15, r=8, p=1); the tests' cheap one is theirs."""
    app.config["PASSWORD_HASH_METHOD"] = DEFAULTS["PASSWORD_HASH_METHOD"]
    result = runner.invoke(args=["staff", "create", "ann@example.org", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    [user] = _staff(app)
    assert user.password_hash.startswith("scrypt:32768:8:1$")
    assert check_password_hash(user.password_hash, PASSWORD)


def test_create_asks_for_the_password_twice(app: Flask, runner: FlaskCliRunner) -> None:
    """Without --password-stdin the password is prompted for and confirmed."""
    result = runner.invoke(args=["staff", "create", "ana@example.org"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert [u.role for u in _staff(app)] == ["editor"]


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["not-an-address"], PASSWORD, "not a valid email address"),
        (["ana@example.org\r\nBcc: x@example.org"], PASSWORD, "not a valid email address"),
        (["a" * 250 + "@example.org"], PASSWORD, "not a valid email address"),
        (["ana@example.org"], "short", "12 to 1024 characters"),
        (["ana@example.org"], "x" * 2000, "12 to 1024 characters"),
        (["ana@example.org", "--role", "owner"], PASSWORD, "Invalid value for '--role'"),
    ],
)
def test_bad_input_creates_nothing(
    app: Flask, runner: FlaskCliRunner, args: list[str], password: str, message: str
) -> None:
    """Malformed, injected or oversized values fail with a message and leave no account."""
    result = runner.invoke(args=["staff", "create", *args, "--password-stdin"], input=password + "\n")
    assert result.exit_code != 0
    assert message in result.output
    assert _staff(app) == []


def test_same_address_twice_is_refused(app: Flask, runner: FlaskCliRunner) -> None:
    """A second account for the same address in another case is refused."""
    runner.invoke(args=["staff", "create", "ana@example.org", "--password-stdin"], input=PASSWORD + "\n")
    result = runner.invoke(args=["staff", "create", "ANA@example.org", "--password-stdin"], input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert len(_staff(app)) == 1
