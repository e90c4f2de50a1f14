"""The console's digest pages: preview the next one, send a test, send or schedule it, follow it."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ..bounces.report import digest_bounce_counts, digest_bounces
from ..digests.compose import compose_next, preview
from ..digests.service import (
    DigestError,
    audience_by_variant,
    create_digest,
    delivery_counts,
    find_digest,
    is_public,
    time_to_finish,
    undelivered,
)
from ..doctor.checks import CACHE_SECONDS, failed, recent_checks
from ..models import DELIVERY_STATUSES, TOPIC_LABELS, Digest, Topic
from ..security import mail_frame
from ..sending import control
from . import timefmt
from .auth import staff_only
from .forms import ScheduleForm, SendForm, TestSendForm

bp = staff_only(Blueprint("staff_digests", __name__, url_prefix="/staff/digests"))
timefmt.register(bp)
FAILED_SHOWN = 200


@bp.get("/next")
def next_digest() -> str:
    """The next digest as subscribers of every topic would read it, with the ways to send it."""
    return _preview_page()


def _preview_page(
    test_form: TestSendForm | None = None, schedule_form: ScheduleForm | None = None, error: str | None = None
) -> str:
    """Render the preview with the three forms (and their errors, when an attempt failed)."""
    return render_template(
        "staff/next_digest.html", shown=preview(), error=error, audience=_audience(compose_next().topics),
        test_form=test_form or TestSendForm(formdata=None), schedule_form=schedule_form or ScheduleForm(formdata=None),
    )  # fmt: skip


def _audience(topics: int) -> list[tuple[str, int]]:
    """Whom a digest of ``topics`` would reach now: each topic variant (named by its topics) and its count."""
    reached = audience_by_variant(topics)
    return [(" + ".join(TOPIC_LABELS[t] for t in Topic(v).to_names()), n) for v, n in sorted(reached.items())]


@bp.get("/next/html")
@mail_frame
def next_digest_html() -> Response:
    """The HTML part of the preview alone, for a sandboxed frame."""
    shown = preview()
    if shown is None:
        abort(404)
    return Response(shown[1].html, mimetype="text/html")


@bp.get("/next/checks")
def deliverability() -> str:
    """What would hurt delivery (``doctor``'s checks), run at most every few minutes per process."""
    results, checked_at = recent_checks()
    return render_template(
        "staff/checks.html", results=results, checked_at=checked_at, failed=failed(results),
        cache_minutes=CACHE_SECONDS // 60,
    )  # fmt: skip


@bp.post("/test")
def send_test() -> tuple[str, int] | BaseResponse:
    """Send one test copy of the next digest to the address given."""
    form = TestSendForm(formdata=request.form)
    if not form.validate():
        return _preview_page(test_form=form), 400
    return _create(test_to=form.email.data)


@bp.get("/send")
def confirm_send() -> str | BaseResponse:
    """The second step of "Send now": whom it will reach, by topic variant, and a button to confirm."""
    next_digest = compose_next()
    if next_digest.is_empty:
        return redirect(url_for(".next_digest"))
    audience = _audience(next_digest.topics)
    return render_template(
        "staff/send_confirm.html", audience=audience, total=sum(n for _, n in audience), form=SendForm(formdata=None)
    )


@bp.post("/send")
def send_now() -> tuple[str, int] | BaseResponse:
    """Create the next digest and queue it for every subscriber it concerns (a replay finds nothing new: 409)."""
    return _create()


@bp.post("/schedule")
def schedule() -> tuple[str, int] | BaseResponse:
    """Create the next digest to go out at the local time given (in ORG_TIMEZONE)."""
    form = ScheduleForm(formdata=request.form)
    if not form.validate() or form.at_utc is None:
        return _preview_page(schedule_form=form), 400
    return _create(at=form.at_utc)


def _create(**options: object) -> tuple[str, int] | BaseResponse:
    """Create the digest through the service; a refusal shows the preview again with the reason."""
    try:
        digest = create_digest(actor=current_user.email, **options)  # type: ignore[arg-type]
    except DigestError as exc:
        return _preview_page(error=str(exc)), 409
    if digest.is_test:
        flash(f"Test copy sent to {digest.test_to}: {digest.subject}")
    elif digest.scheduled_at:
        flash(f"Digest {digest.number} scheduled for {timefmt.local_time(digest.scheduled_at)}: {digest.subject}")
    else:
        flash(f"Digest {digest.number} created: {digest.subject}")
    return redirect(url_for(".show", digest_id=digest.id))


def digest_name(digest: Digest) -> str:
    """``Digest 12``, ``Test send to me@example.org`` or ``Reminder`` (only real digests have a number)."""
    if digest.kind == "reminder":
        return "Reminder"
    return f"Test send to {digest.test_to}" if digest.is_test else f"Digest {digest.number}"


def _digest(digest_id: int) -> Digest:
    """The digest with this id, or 404."""
    digest = find_digest(digest_id)
    if digest is None:
        abort(404)
    return digest


@bp.get("/<int:digest_id>")
def show(digest_id: int) -> str:
    """A digest's status, its delivery figures (refreshing while it goes out), what failed and what came back."""
    digest = _digest(digest_id)
    counts = _counts(digest.id)
    return render_template(
        "staff/digest.html", digest=digest, name=digest_name(digest), counts=counts, public=is_public(digest),
        failed=undelivered(digest.id, FAILED_SHOWN), eta=_eta(digest, counts),
        bounce_counts=digest_bounce_counts(digest.id), bounces=digest_bounces(digest.id, FAILED_SHOWN),
        control_form=SendForm(formdata=None), confirm_cancel=request.args.get("confirm") == "cancel",
    )  # fmt: skip


def _eta(digest: Digest, counts: dict[str, int]) -> tuple[float, str] | None:
    """Seconds left and the rate assumed, for a digest going out; None otherwise or when unknown."""
    if digest.status not in ("queued", "sending"):
        return None
    return time_to_finish(digest.id, counts["queued"] + counts["sending"])


#: The control actions of a digest's page: the service each runs and what staff read after it.
CONTROLS = {
    "pause": (control.pause, "{name} paused: nothing more is handed to the workers until you resume it."),
    "resume": (control.resume, "{name} resumed."),
    "cancel": (
        control.cancel,
        "{name} cancelled; what had not gone out will not. Its content goes in the next digest.",
    ),
    "retry-failed": (control.retry_failed, "{name}: its failed deliveries are queued again."),
}


@bp.post("/<int:digest_id>/<any(pause, resume, cancel, 'retry-failed'):action>")
def act(digest_id: int, action: str) -> BaseResponse:
    """Pause, resume, cancel a digest or retry its failed deliveries; a refusal is shown on its page."""
    digest = _digest(digest_id)
    if not SendForm(formdata=request.form).validate():
        abort(400)
    service, done = CONTROLS[action]
    try:
        service(digest.id, current_user.email)
    except control.SendingError as exc:
        flash(_refusal(digest, exc), "error")
    else:
        flash(done.format(name=digest_name(digest)))
    return redirect(url_for(".show", digest_id=digest.id), 303)


def _refusal(digest: Digest, exc: control.SendingError) -> str:
    """The engine's refusal as a sentence that names the digest as staff know it."""
    reason = str(exc).removeprefix(f"digest {digest.id} ")
    return f"{digest_name(digest)} {reason}." if reason != str(exc) else reason.capitalize() + "."


@bp.get("/<int:digest_id>/progress")
def progress(digest_id: int) -> Response:
    """The same figures as JSON, for a page or a script that follows a send."""
    digest = _digest(digest_id)
    return jsonify(id=digest.id, number=digest.number, status=digest.status, counts=_counts(digest.id))


def _counts(digest_id: int) -> dict[str, int]:
    """Deliveries by status, with every status present."""
    return {status: 0 for status in DELIVERY_STATUSES} | delivery_counts(digest_id)
