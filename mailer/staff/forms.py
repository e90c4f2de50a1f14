"""Staff console forms."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, EmailField, PasswordField, SelectChoice, SelectField
from wtforms.validators import DataRequired, Email, InputRequired, Length, ValidationError

from ..models import STAFF_ROLES
from .timefmt import LocalTimeError, org_zone, to_utc, zone_label


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
    """When to send the next digest, as a local date and time in the organisation's zone (ORG_TIMEZONE)."""

    # InputRequired, not DataRequired: an unreadable time must say so, not "required".
    at = DateTimeLocalField("Send at", format="%Y-%m-%dT%H:%M", validators=[InputRequired()])

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Name the zone the time is read in next to the field."""
        super().__init__(*args, **kwargs)
        self.at.label.text = f"Send at, {zone_label()}"
        self.at_utc: datetime | None = None

    def validate_at(self, field: DateTimeLocalField) -> None:
        """The local time must name one moment (not skipped or repeated by a clock change), ahead of now."""
        if field.data is None:
            return
        try:
            moment = to_utc(field.data, org_zone())
        except LocalTimeError as exc:
            raise ValidationError(str(exc)) from None
        if moment <= datetime.now(UTC):
            raise ValidationError("Choose a time in the future.")
        self.at_utc = moment


class NewStaffForm(FlaskForm):
    """A new staff account: address, role and a first password the admin hands over."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254), Email()])
    role = SelectField("Role", choices=[SelectChoice(r, r.capitalize()) for r in STAFF_ROLES], default="editor")
    password = PasswordField("First password (12 characters or more)", validators=[DataRequired(), Length(max=1024)])


class LiftSuppressionForm(FlaskForm):
    """Mail a suppressed address again: staff confirm that its owner asked for it."""

    confirm = BooleanField("Its owner asked to receive the digest again", validators=[DataRequired()])
