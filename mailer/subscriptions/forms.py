"""The public forms: subscribe and preferences (the one-button pages need no form class).

Field checks call the service's ``clean_*`` functions, so the form, the widget and the JSON
API accept and refuse exactly the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, SelectField, SelectMultipleField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from ..models import TOPIC_LABELS, Topic
from .service import (
    MAX_EMAIL,
    MAX_NAME,
    REMINDER_CHOICES,
    InvalidInput,
    SubscriptionRequest,
    clean_email,
    clean_name,
    clean_reminder_days,
    clean_topics,
    reminder_label,
)

TOPIC_CHOICES = [SelectChoice(name, TOPIC_LABELS[name]) for name in Topic.names()]


def _checked_by(clean: Callable[[Any], object]) -> Callable[[FlaskForm, Field], None]:
    """A WTForms validator that runs one of the service's ``clean_*`` functions."""

    def validate(form: FlaskForm, field: Field) -> None:
        """Turn the service's InvalidInput into a form error on ``field``."""
        try:
            clean(field.data)
        except InvalidInput as exc:
            raise ValidationError(exc.message) from None

    return validate


class TopicsField(SelectMultipleField):
    """Topic checkboxes whose values are checked by ``clean_topics``, like the API's."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form: FlaskForm) -> None:
        """Leave the choice check to the ``clean_topics`` validator (one message for both)."""


def _topics_field(default: list[str]) -> TopicsField:
    """The topics checkboxes, every topic ticked unless ``default`` says otherwise."""
    return TopicsField(
        "Topics",
        choices=TOPIC_CHOICES,
        default=default,
        validators=[_checked_by(clean_topics)],
    )


REMINDER_OPTIONS = [SelectChoice("", "None")] + [
    SelectChoice(str(days), f"{reminder_label(days)} before") for days in REMINDER_CHOICES
]


class ReminderField(SelectField):
    """One choice of meeting reminder, checked by ``clean_reminder_days`` (with the form's topics)."""

    def pre_validate(self, form: FlaskForm) -> None:
        """Refuse the field sent twice; leave the value's check to the validator (one message for every bad value)."""
        if self.raw_data is not None and len(self.raw_data) > 1:
            raise ValidationError("Choose one meeting reminder.")


def _reminder_matches_topics(form: FlaskForm, field: Field) -> None:
    """The service's reminder check, with the topics ticked on the same form."""
    try:
        topics = clean_topics(form.topics.data)
    except InvalidInput:
        topics = None  # the topics field reports its own error
    try:
        clean_reminder_days(field.data, topics)
    except InvalidInput as exc:
        raise ValidationError(exc.message) from None


class SubscribeForm(FlaskForm):
    """Email, optional name, topics, and a honeypot field that people never see."""

    email = EmailField(
        "Email address",
        validators=[_checked_by(clean_email)],
        render_kw={"autocomplete": "email", "maxlength": MAX_EMAIL, "inputmode": "email"},
    )
    name = StringField(
        "Name (optional)",
        validators=[_checked_by(clean_name)],
        render_kw={"autocomplete": "name", "maxlength": MAX_NAME},
    )
    topics = _topics_field(list(Topic.names()))
    # Hidden from people (and screen readers); bots that fill in every field fill this one too.
    website = StringField("Leave this field empty", render_kw={"autocomplete": "off", "tabindex": "-1"})

    def subscription_request(self) -> SubscriptionRequest:
        """The checked request; call only after ``validate()`` succeeded."""
        return SubscriptionRequest(
            clean_email(self.email.data), clean_name(self.name.data), clean_topics(self.topics.data)
        )


class PreferencesForm(FlaskForm):
    """Name, topics and meeting reminder of one subscriber."""

    name = StringField(
        "Name (optional)",
        validators=[_checked_by(clean_name)],
        render_kw={"autocomplete": "name", "maxlength": MAX_NAME},
    )
    topics = _topics_field([])
    reminder_days = ReminderField(
        "Meeting reminders",
        choices=REMINDER_OPTIONS,
        default="",
        validators=[_reminder_matches_topics],
        description="One email this long before each upcoming meeting (with the Meetings topic).",
    )

    def reminder(self) -> int | None:
        """The checked reminder in days, or None; call only after ``validate()`` succeeded."""
        return clean_reminder_days(self.reminder_days.data)


class RevokeLinksForm(FlaskForm):
    """Void every link sent so far (the CSRF token is the whole form)."""
