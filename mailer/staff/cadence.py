"""The console's digest schedule page, and the hold / send-now pages that review emails link to.

``bp`` is the console page (signed-in staff); ``review_bp`` serves the links in review emails,
where the signed token is the authority (as a password-reset link): a GET shows a button, only
the POST acts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import DecimalField, HiddenField, IntegerField, SelectChoice, SelectField, TimeField
from wtforms.validators import InputRequired, NumberRange, Optional, Regexp, StopValidation, ValidationError

from ..digests import cadence
from ..digests.compose import preview
from ..models import TOPIC_LABELS, DigestSchedule, Topic
from .auth import staff_only
from .timefmt import zone_label

bp = staff_only(Blueprint("staff_cadence", __name__, url_prefix="/staff/schedule"))
review_bp = Blueprint("cadence_review", __name__, url_prefix="/staff/review")

FREQUENCIES = [
    SelectChoice("daily", "Every day"),
    SelectChoice("weekly", "Every week"),
    SelectChoice("weeks", "Every few weeks"),
    SelectChoice("monthday", "Every month, on a day of the month"),
    SelectChoice("monthweekday", "Every month, on a weekday (e.g. the first Tuesday)"),
]
WEEKDAYS = [SelectChoice(day, name) for day, name in zip(cadence.DAYS, cadence.DAY_NAMES, strict=True)]
ORDINAL_CHOICES = [SelectChoice(o, o.capitalize()) for o in cadence.ORDINALS]
EVERY_CHOICES = [SelectChoice(str(n), str(n)) for n in range(2, 9)]


def _finite(form: FlaskForm, field: DecimalField) -> None:
    """A number, not NaN or infinity (which Decimal reads, and which no range can compare)."""
    if field.data is not None and not field.data.is_finite():
        raise StopValidation("Enter a number of hours (0 for none).")


_MINIMUM = [InputRequired(message="Enter a number from 1 to 999."), NumberRange(1, cadence.MAX_MIN_ITEMS)]


class CadenceForm(FlaskForm):
    """The schedule: how often, on which day, at what local time, the review window and each topic's minimum."""

    frequency = SelectField("How often", choices=FREQUENCIES, default="weekly")
    weekday = SelectField("Day of the week", choices=WEEKDAYS, default="mon")
    every = SelectField("Every how many weeks", choices=EVERY_CHOICES, default="2")
    day = IntegerField("Day of the month (1 to 28)", validators=[Optional(), NumberRange(1, 28)], default=1)
    ordinal = SelectField("Which one in the month", choices=ORDINAL_CHOICES, default="first")
    at = TimeField("Time", format="%H:%M", validators=[InputRequired(message="Enter a time such as 09:00.")])
    review_hours = DecimalField(
        "Review window: hours before each digest that editors get a copy to check (0 for none)",
        validators=[InputRequired(message="Enter a number of hours (0 for none)."), _finite, NumberRange(0, 168)],
        default=Decimal(24),
    )
    min_meetings = IntegerField("Meetings", validators=_MINIMUM, default=1)
    min_projects = IntegerField("Projects", validators=_MINIMUM, default=1)
    min_news = IntegerField("News", validators=_MINIMUM, default=1)

    def __init__(self, *args: object, **kwargs: object) -> None:
        """Name the zone the time is read in next to the field."""
        super().__init__(*args, **kwargs)
        self.at.label.text = f"Time, {zone_label()}"

    def validate(self, extra_validators: dict | None = None) -> bool:
        """Each field, then: a monthly-by-date schedule needs its day."""
        valid = super().validate(extra_validators)
        if self.frequency.data == "monthday" and self.day.data is None and not self.day.errors:
            self.day.errors = [*self.day.errors, "Enter the day of the month, 1 to 28."]
            return False
        return valid

    def validate_review_hours(self, field: DecimalField) -> None:
        """Whole minutes only (0.5 is half an hour); checked once the number is in range."""
        if not field.errors and field.data is not None and (field.data * 60) != int(field.data * 60):
            raise ValidationError("Use whole minutes: 0.5 is half an hour, 0.25 a quarter.")

    def rule(self) -> str:
        """The rule the fields describe, in the written form the service reads."""
        clock, day = self.at.data.strftime("%H:%M"), self.weekday.data
        return {
            "daily": f"daily {clock}",
            "weekly": f"weekly {day} {clock}",
            "weeks": f"every {self.every.data} weeks {day} {clock}",
            "monthday": f"monthly {self.day.data} {clock}",
            "monthweekday": f"monthly {self.ordinal.data} {day} {clock}",
        }[self.frequency.data]

    def min_items(self) -> dict[str, int]:
        """Each topic's minimum of new items."""
        return {"meetings": self.min_meetings.data, "projects": self.min_projects.data, "news": self.min_news.data}


class RunForm(FlaskForm):
    """Hold or release one run, named by its time (so a click acts on the run the page showed)."""

    run = HiddenField(validators=[InputRequired(), Regexp(r"^[0-9]{1,11}$")])

    def run_at(self) -> datetime:
        """The run's time, from its UNIX seconds."""
        return datetime.fromtimestamp(int(self.run.data), UTC)


class ConfirmForm(FlaskForm):
    """A button (the CSRF token is the whole form)."""


def _filled(schedule: DigestSchedule | None) -> CadenceForm:
    """The form showing the schedule as it is (or the defaults when there is none)."""
    form = CadenceForm(formdata=None)
    if schedule is None:
        return form
    rule = cadence.parse_rule(schedule.rule)
    form.frequency.data, form.at.data = rule.kind, rule.at
    form.weekday.data = cadence.DAYS[rule.weekday] if rule.weekday is not None else "mon"
    form.every.data, form.day.data, form.ordinal.data = str(max(rule.every, 2)), rule.day or 1, rule.ordinal or "first"
    form.review_hours.data = Decimal(schedule.review_minutes) / 60
    for topic in Topic.names():
        getattr(form, f"min_{topic}").data = schedule.min_items.get(topic, 1)
    return form


def _page(form: CadenceForm | None = None, error: str | None = None, status: int = 200) -> tuple[str, int]:
    """The schedule page: what is set, what comes next, the form to change it."""
    schedule = cadence.get_schedule()
    on = schedule is not None and schedule.active
    return render_template(
        "staff/schedule.html", schedule=schedule if on else None, was=schedule if not on else None,
        rule=cadence.parse_rule(schedule.rule) if on else None, form=form or _filled(schedule), error=error,
        review=cadence.describe_review(schedule.review_minutes) if on else None, topics=TOPIC_LABELS,
        held=on and schedule.held_for == schedule.next_run_at, run=RunForm(formdata=None),
        confirm=ConfirmForm(formdata=None),
    ), status  # fmt: skip


@bp.get("/")
def index() -> tuple[str, int]:
    """The schedule, its next run (ORG_TIMEZONE), review window, minimums and last outcome, with the form."""
    return _page()


@bp.post("/")
def save() -> tuple[str, int] | Response:
    """Set the schedule from the form; a bad value is a form error (400) and nothing changes."""
    form = CadenceForm(formdata=request.form)
    if not form.validate():
        return _page(form, status=400)
    try:
        schedule = cadence.set_schedule(
            form.rule(), int(form.review_hours.data * 60), form.min_items(), actor=current_user.email
        )
    except cadence.CadenceError as exc:
        return _page(form, error=_sentence(str(exc)), status=400)
    flash(f"Digests now go out {cadence.parse_rule(schedule.rule).describe()}.")
    return redirect(url_for(".index"), 303)


@bp.post("/off")
def off() -> tuple[str, int] | Response:
    """Switch the schedule off."""
    if not ConfirmForm(formdata=request.form).validate():
        return _page(error="This form has expired. Please reload the page and try again.", status=400)
    changed = cadence.turn_off(actor=current_user.email)
    flash("The digest schedule is off: digests go out only when staff send them." if changed else "It was off already.")
    return redirect(url_for(".index"), 303)


@bp.post("/<any(hold, release):action>")
def hold_or_release(action: str) -> tuple[str, int] | Response:
    """Hold the next run, or release its hold; a run that moved on meanwhile is reported, nothing changes."""
    form = RunForm(formdata=request.form)
    if not form.validate():
        return _page(error="That request named no digest run. Please reload the page and try again.", status=400)
    try:
        (cadence.hold if action == "hold" else cadence.release_hold)(form.run_at(), current_user.email)
    except cadence.CadenceError as exc:
        return _page(error=_sentence(str(exc)), status=exc.status)
    flash("The next digest is held: it will not go out." if action == "hold" else "The hold is released.")
    return redirect(url_for(".index"), 303)


def _sentence(message: str) -> str:
    """A service's message as a sentence: capitalised, with a full stop."""
    return message[:1].upper() + message[1:].rstrip(".") + "."


@review_bp.get("/<token>")
def review_link(token: str) -> tuple[str, int]:
    """What a review link would do (the run, the digest's subject), with a button; nothing changes yet."""
    try:
        link = cadence.read_review_link(token)
    except cadence.CadenceError as exc:
        return _link_page(problem=_sentence(str(exc)), status=exc.status)
    shown = preview()
    return _link_page(link=link, subject=shown[0] if shown else None)


@review_bp.post("/<token>")
def review_act(token: str) -> tuple[str, int]:
    """Hold the run, or send it now, as the link's staff member; a replayed or stale link is refused."""
    if not ConfirmForm(formdata=request.form).validate():
        return _link_page(problem="This form has expired. Please open the link again.", status=400)
    try:
        done = cadence.act_on_link(token)
    except cadence.CadenceError as exc:
        return _link_page(problem=_sentence(str(exc)), status=exc.status)
    return _link_page(done=_sentence(done))


def _link_page(status: int = 200, **context: object) -> tuple[str, int]:
    """The review link's page: its question, what was done, or why it cannot be used."""
    return render_template("cadence/review.html", form=ConfirmForm(formdata=None), **context), status
