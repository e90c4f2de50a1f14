"""The console's digest pages: preview the next one, send a test, send or schedule it, follow it."""

from __future__ import annotations

from datetime import UTC

from flask import Blueprint, Response, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ..bounces.report import digest_bounce_counts, digest_bounces
from ..digests.compose import preview
from ..digests.service import DigestError, create_digest, delivery_counts, find_digest, undelivered
from ..doctor.checks import CACHE_SECONDS, failed, recent_checks
from ..models import DELIVERY_STATUSES, Digest
from ..security import mail_frame
from ..sending import control
from .auth import staff_only
from .forms import ScheduleForm, SendForm, TestSendForm

bp = staff_only(Blueprint("staff_digests", __name__, url_prefix="/staff/digests"))
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
        "staff/next_digest.html", shown=preview(), error=error,
        test_form=test_form or TestSendForm(formdata=None), send_form=SendForm(formdata=None),
        schedule_form=schedule_form or ScheduleForm(formdata=None),
    )  # fmt: skip


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


@bp.post("/send")
def send_now() -> tuple[str, int] | BaseResponse:
    """Create the next digest and queue it for every subscriber it concerns."""
    return _create()


@bp.post("/schedule")
def schedule() -> tuple[str, int] | BaseResponse:
    """Create the next digest to go out at the time given (UTC)."""
    form = ScheduleForm(formdata=request.form)
    if not form.validate() or form.at.data is None:
        return _preview_page(schedule_form=form), 400
    return _create(at=form.at.data.replace(tzinfo=UTC))


def _create(**options: object) -> tuple[str, int] | BaseResponse:
    """Create the digest through the service; a refusal shows the preview again with the reason."""
    try:
        digest = create_digest(actor=current_user.email, **options)  # type: ignore[arg-type]
    except DigestError as exc:
        return _preview_page(error=str(exc)), 409
    flash(f"Digest {digest.id} created: {digest.subject}")
    return redirect(url_for(".show", digest_id=digest.id))


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
    return render_template(
        "staff/digest.html", digest=digest, counts=_counts(digest.id), failed=undelivered(digest.id, FAILED_SHOWN),
        bounce_counts=digest_bounce_counts(digest.id), bounces=digest_bounces(digest.id, FAILED_SHOWN),
        control_form=SendForm(formdata=None),
    )  # fmt: skip


#: The control actions of a digest's page: the service each runs and what staff read after it.
CONTROLS = {
    "pause": (control.pause, "Digest {id} paused: nothing more is handed to the workers until you resume it."),
    "resume": (control.resume, "Digest {id} resumed."),
    "cancel": (
        control.cancel,
        "Digest {id} cancelled; what had not gone out will not. Its content goes in the next digest.",
    ),
    "retry-failed": (control.retry_failed, "Digest {id}: its failed deliveries are queued again."),
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
        flash(str(exc).capitalize() + ".", "error")
    else:
        flash(done.format(id=digest.id))
    return redirect(url_for(".show", digest_id=digest.id), 303)


@bp.get("/<int:digest_id>/progress")
def progress(digest_id: int) -> Response:
    """The same figures as JSON, for a page or a script that follows a send."""
    digest = _digest(digest_id)
    return jsonify(id=digest.id, status=digest.status, counts=_counts(digest.id))


def _counts(digest_id: int) -> dict[str, int]:
    """Deliveries by status, with every status present."""
    return {status: 0 for status in DELIVERY_STATUSES} | delivery_counts(digest_id)
