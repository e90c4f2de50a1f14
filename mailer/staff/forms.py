"""Staff console forms."""

from __future__ import annotations

from datetime import UTC, datetime

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    Field,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from ..models import STAFF_ROLES, TOPIC_LABELS, Topic
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


class SubscriberImportForm(FlaskForm):
    """A subscribers CSV to check (a dry run) before importing it."""

    file = FileField("CSV file (the format of the export)", validators=[FileRequired()])
    send_confirmations = BooleanField("Email a confirmation link to the rows without consent (they come in pending)")


class SubscriberImportCommitForm(FlaskForm):
    """Import the file the dry run checked: named by the key it was kept under."""

    upload = HiddenField(validators=[DataRequired(), Length(max=64)])
    send_confirmations = HiddenField()


class AddSubscriberForm(FlaskForm):
    """One subscriber added by hand, with how they agreed or a confirmation email to ask them."""

    email = StringField("Email address", validators=[DataRequired(), Length(max=254)])
    name = StringField("Name (optional)", validators=[Length(max=200)])
    topics = SelectMultipleField(
        "Topics", choices=[(name, TOPIC_LABELS[name]) for name in Topic.names()], validators=[DataRequired()],
        widget=ListWidget(prefix_label=False), option_widget=CheckboxInput(),
    )  # fmt: skip
    consent = RadioField(
        "Consent", default="email",
        choices=[("email", "Send a confirmation email: they stay pending until they confirm"),
                 ("evidence", "They agreed already: record when and how")],
    )  # fmt: skip
    agreed_on = DateField("They agreed on", validators=[Optional()])
    how = StringField("How they agreed (e.g. paper form at SMEWG 57)", validators=[Length(max=200)])


def _printable(form: FlaskForm, field: Field) -> None:
    """No control characters (a NUL, a newline) in a one-line value or a password."""
    if field.data and not str(field.data).isprintable():
        raise ValidationError("Control characters are not allowed.")


_NEW_PASSWORD = [DataRequired(), Length(min=12, max=1024), _printable]


class NewPasswordForm(FlaskForm):
    """A new password, typed twice (a password-reset link's form)."""

    new_password = PasswordField("New password (12 characters or more)", validators=_NEW_PASSWORD)
    confirm = PasswordField(
        "New password again", validators=[DataRequired(), EqualTo("new_password", "The two new passwords differ.")]
    )


class ChangePasswordForm(NewPasswordForm):
    """The current password, then a new one typed twice."""

    current_password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024), _printable])


class ResetRequestForm(FlaskForm):
    """The address of the account whose password is forgotten."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254), _printable, Email()])


class CodeForm(FlaskForm):
    """The six-digit code of an authenticator app."""

    code = StringField("Code from your authenticator app", validators=[
        DataRequired(), Length(max=16), Regexp(r"^\s*[0-9]{6}\s*$", message="Enter the 6-digit code."),
    ])  # fmt: skip


class TotpSetupForm(CodeForm):
    """The code that shows the app has the new secret, and the signed secret being set up."""

    setup = HiddenField(validators=[DataRequired(), Length(max=512)])


class TotpOffForm(FlaskForm):
    """The current password, to turn two-step sign-in off."""

    password = PasswordField("Current password", validators=[DataRequired(), Length(max=1024), _printable])
