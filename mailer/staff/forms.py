"""Staff console forms."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, EmailField, PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, Email, InputRequired, Length, ValidationError

from ..models import STAFF_ROLES


class LoginForm(FlaskForm):
    """Email and password."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class TestSendForm(FlaskForm):
    """Where to send one test copy."""

    email = EmailField("Send a test copy to", validators=[DataRequired(), Length(max=254), Email()])


class SendForm(FlaskForm):
    """Send the next digest now (the CSRF token is the whole form)."""


class ScheduleForm(FlaskForm):
    """When to send the next digest, in UTC."""

    # InputRequired, not DataRequired: an unreadable time must say so, not "required".
    at = DateTimeLocalField("Send at (UTC)", format="%Y-%m-%dT%H:%M", validators=[InputRequired()])

    def validate_at(self, field: DateTimeLocalField) -> None:
        """The time must be ahead of now (UTC)."""
        if field.data is not None and field.data.replace(tzinfo=UTC) <= datetime.now(UTC):
            raise ValidationError("Choose a time in the future.")


class NewStaffForm(FlaskForm):
    """A new staff account: address, role and a first password the admin hands over."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254), Email()])
    role = SelectField("Role", choices=[SelectChoice(r, r.capitalize()) for r in STAFF_ROLES], default="editor")
    password = PasswordField("First password (12 characters or more)", validators=[DataRequired(), Length(max=1024)])


class LiftSuppressionForm(FlaskForm):
    """Mail a suppressed address again: staff confirm that its owner asked for it."""

    confirm = BooleanField("Its owner asked to receive the digest again", validators=[DataRequired()])
