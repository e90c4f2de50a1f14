"""The console's subscriber pages: find an address, see its history, unsubscribe or erase it on request, export.

For the questions a communications team gets ("did I confirm?", "please take me off", "delete
everything you hold on me"): the status, topics, consent log and recent deliveries of one address,
and an unsubscribe or an erasure made on the person's behalf that is recorded as such. The list pages
through every subscriber with filters; staff import a CSV after a dry run, or add one address by hand.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterator

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from ..bounces.report import subscriber_bounces
from ..extensions import csrf, db
from ..models import SUBSCRIBER_STATUSES, AuditEntry, Subscriber, Topic
from ..redis_client import get_redis, redis_key
from ..subscriptions.erasure import erase_subscriber
from ..subscriptions.lookup import consent_log, recent_deliveries, subscriber_by_id
from ..subscriptions.service import (
    InvalidInput,
    StaffEvidence,
    SubscriptionRequest,
    add_subscriber_by_staff,
    clean_email,
    clean_name,
    clean_topics,
    lift_suppression,
    reminder_label,
    revoke_links,
    unsubscribe_for_owner,
)
from ..subscriptions.transfer import (
    ImportReport,
    NotUTF8,
    SubscriberImportError,
    export_rows,
    import_subscribers,
    utf8_lines,
)
from ..subscriptions.web import client_consent
from ..text import without_control
from .auth import staff_only
from .forms import (
    AddSubscriberForm,
    LiftSuppressionForm,
    SendForm,
    SubscriberImportCommitForm,
    SubscriberImportForm,
)
from .subscriber_list import SOURCES, read_filter, subscriber_page

bp = staff_only(Blueprint("staff_subscribers", __name__, url_prefix="/staff/subscribers"))
SHOWN = 50
#: The largest CSV the console takes (the CLI takes larger files); the app's limit elsewhere stays 1 MB.
MAX_UPLOAD = 20 * 1024 * 1024
#: How long a checked file waits for "Import these rows" before it is dropped.
UPLOAD_KEPT = 3600
_UPLOAD_KEY = re.compile(r"[A-Za-z0-9_-]{20,64}")


@bp.get("/")
def search() -> str:
    """Every subscriber, newest first, 50 a page, narrowed by the filters in the query string."""
    filters = read_filter(request.args)
    rows, next_before = subscriber_page(filters, SHOWN)
    return render_template(
        "staff/subscribers.html", filters=filters, rows=rows, next_before=next_before,
        statuses=SUBSCRIBER_STATUSES, topics=Topic.names(), sources=SOURCES, topic_names=_topic_names,
    )  # fmt: skip


def _topic_names(mask: int) -> list[str]:
    """The names of the topics in a mask."""
    return Topic(mask).to_names()


@bp.get("/import")
def import_form() -> str:
    """The upload form for a subscribers CSV."""
    return _import_page(SubscriberImportForm(formdata=None))


# The form checks its CSRF token itself: the global check would read the body under the 1 MB limit first.
@bp.post("/import")
@csrf.exempt
def import_check() -> tuple[str, int] | str:
    """Check an uploaded CSV by importing it and rolling back: show what would change, keep the file an hour."""
    request.max_content_length = MAX_UPLOAD
    try:
        form = SubscriberImportForm()
        valid = form.validate()
    except RequestEntityTooLarge:
        return _import_page(SubscriberImportForm(formdata=None), error=f"The file is larger than {_mb()} MB."), 413
    if not valid:
        if "csrf_token" in form.errors:
            abort(400)
        return _import_page(form), 400
    # The browser's file name goes into the consent log and the audit entry: one line, no NUL.
    data, name = form.file.data.read(), without_control(form.file.data.filename or "")[:200] or "upload.csv"
    send = bool(form.send_confirmations.data)
    error, report = _run_import(data, name, send, dry_run=True)
    if error is not None:
        return _import_page(form, error=error), 400
    commit = SubscriberImportCommitForm(formdata=None, upload=_keep_upload(data, name), send_confirmations="1" * send)
    return _import_page(form, report=report, commit=commit, name=name, send=send)


@bp.post("/import/commit")
def import_commit() -> BaseResponse | tuple[str, int]:
    """Import the file the dry run checked, under the signed-in staff member's name; the kept copy goes."""
    form = SubscriberImportCommitForm(formdata=request.form)
    if not form.validate():
        abort(400)
    upload = _take_upload(form.upload.data or "")
    if upload is None:
        flash("That file is no longer kept (it was imported, or an hour passed); nothing was imported.")
        return redirect(url_for(".import_form"), 303)
    data, name = upload
    error, report = _run_import(data, name, bool(form.send_confirmations.data), dry_run=False)
    if error is not None:
        return _import_page(SubscriberImportForm(formdata=None), error=error), 400
    flash(f"Imported from {name}: {_summary(report)}.")
    return redirect(url_for(".search"), 303)


def _run_import(data: bytes, name: str, send: bool, dry_run: bool) -> tuple[str | list[str] | None, ImportReport]:
    """Import (or check) the file through the CLI's code; the refusal to show, or None, and the report."""
    try:
        report = import_subscribers(utf8_lines(io.BytesIO(data)), source_name=name, send_confirmations=send,
                                    actor=current_user.email, dry_run=dry_run, refuse_formulas=True)  # fmt: skip
    except NotUTF8 as exc:
        return f"The file is {exc}; save it as UTF-8 CSV and upload it again. Nothing was imported.", ImportReport()
    except SubscriberImportError as exc:
        return exc.problems, ImportReport()
    return None, report


def _summary(report: ImportReport) -> str:
    """What an import did, in one sentence's worth of counts."""
    return (
        f"{report.confirmed} confirmed, {report.pending} pending, {report.opted_out} unsubscribed or suppressed; "
        f"{len(report.already_known)} already known and left as they are; {report.erased_skipped} erased, skipped"
    )


def _import_page(form: SubscriberImportForm, error: str | list[str] | None = None, **result: object) -> str:
    """The import page: the upload form, a refusal, or a dry run's report with the form that imports it."""
    problems = error if isinstance(error, list) else []
    return render_template("staff/subscriber_import.html", form=form, error=error if isinstance(error, str) else None,
                           problems=problems, max_mb=_mb(), **result)  # fmt: skip


def _mb() -> int:
    """MAX_UPLOAD in megabytes."""
    return MAX_UPLOAD // (1024 * 1024)


def _keep_upload(data: bytes, name: str) -> str:
    """Keep a checked file in Redis for an hour (any web process may take the next step); return its key.

    One file a staff member: checking another drops the previous one, so Redis holds at most that.
    """
    key, redis = secrets.token_urlsafe(24), get_redis()
    redis.hset(_upload_key(key), mapping={"data": data, "name": name})
    redis.expire(_upload_key(key), UPLOAD_KEPT)
    previous = redis.set(_upload_key("latest"), key, ex=UPLOAD_KEPT, get=True)
    if previous:
        redis.delete(_upload_key(previous.decode()))
    return key


def _take_upload(key: str) -> tuple[bytes, str] | None:
    """The kept file and its name, removed in the same step (so a double click imports once); None if gone."""
    if not _UPLOAD_KEY.fullmatch(key):
        return None
    pipe = get_redis().pipeline()
    kept, _ = pipe.hgetall(_upload_key(key)).delete(_upload_key(key)).execute()
    return (kept[b"data"], kept[b"name"].decode()) if kept else None


def _upload_key(key: str) -> str:
    """The Redis key of a kept upload: only the staff member who uploaded it can take it."""
    return redis_key(f"subscriber-import:{current_user.id}:{key}")


@bp.get("/add")
def add_form() -> str:
    """The form to add one subscriber by hand."""
    return render_template("staff/subscriber_add.html", form=AddSubscriberForm(formdata=None))


@bp.post("/add")
def add() -> BaseResponse | tuple[str, int]:
    """Add one subscriber: confirmed with the consent evidence given, or pending and sent a confirmation."""
    form = AddSubscriberForm(formdata=request.form)
    if form.validate():
        try:
            subscriber = add_subscriber_by_staff(_wanted(form), _evidence(form), current_user.email,
                                                 request.remote_addr)  # fmt: skip
        except InvalidInput as exc:
            field = getattr(form, exc.field, form.email)
            field.errors = [*field.errors, exc.message]
        else:
            flash(f"{subscriber.email} is added as {subscriber.status}.")
            return redirect(url_for(".show", subscriber_id=subscriber.id), 303)
    if "csrf_token" in form.errors:
        abort(400)
    return render_template("staff/subscriber_add.html", form=form), 400


def _wanted(form: AddSubscriberForm) -> SubscriptionRequest:
    """The address, name and topics of the form, checked as the public form checks them."""
    return SubscriptionRequest(clean_email(form.email.data), clean_name(form.name.data), clean_topics(form.topics.data))


def _evidence(form: AddSubscriberForm) -> StaffEvidence | None:
    """The consent evidence staff recorded, or None when a confirmation email is to ask."""
    if form.consent.data != "evidence":
        return None
    if form.agreed_on.data is None:
        raise InvalidInput("agreed_on", "Give the day they agreed.")
    return StaffEvidence(form.agreed_on.data, form.how.data or "")


@bp.get("/<int:subscriber_id>")
def show(subscriber_id: int) -> str:
    """One subscriber: status, topics, consent log and the last deliveries."""
    return _page(_subscriber(subscriber_id))


def _page(subscriber: Subscriber, erase_error: str | None = None, lift_error: str | None = None) -> str:
    """The subscriber's page, with why an erasure or a lift was refused when it was."""
    events, deliveries = consent_log(subscriber.id), recent_deliveries(subscriber.id, SHOWN)
    return render_template(
        "staff/subscriber.html", subscriber=subscriber, topics=Topic(subscriber.topics).to_names(),
        events=events, deliveries=deliveries, bounces=subscriber_bounces(subscriber.id, SHOWN),
        form=SendForm(formdata=None), lift_form=LiftSuppressionForm(formdata=None),
        erase_error=erase_error, lift_error=lift_error,
        reminder=reminder_label(subscriber.reminder_days) if subscriber.reminder_days else None,
    )  # fmt: skip


@bp.post("/<int:subscriber_id>/unsubscribe")
def unsubscribe_on_request(subscriber_id: int) -> BaseResponse:
    """Unsubscribe the address on its owner's request; the consent log says staff did it."""
    subscriber = _subscriber(subscriber_id)
    if not SendForm(formdata=request.form).validate():
        abort(400)
    if unsubscribe_for_owner(subscriber, client_consent("staff"), current_user.email):
        flash(f"{subscriber.email} is unsubscribed and will receive nothing more.")
    else:
        flash(f"{subscriber.email} was not subscribed; nothing changed.")
    return redirect(url_for(".show", subscriber_id=subscriber.id), 303)


@bp.post("/<int:subscriber_id>/revoke-links")
def revoke_links_on_request(subscriber_id: int) -> BaseResponse:
    """Void every preferences and unsubscribe link the address was sent (a forwarded email, a leak)."""
    subscriber = _subscriber(subscriber_id)
    if not SendForm(formdata=request.form).validate():
        abort(400)
    revoke_links(subscriber, current_user.email, request.remote_addr)
    flash(f"Every link sent to {subscriber.email} so far is void; the next email carries new ones.")
    return redirect(url_for(".show", subscriber_id=subscriber.id), 303)


@bp.post("/<int:subscriber_id>/lift-suppression")
def lift_suppression_on_request(subscriber_id: int) -> BaseResponse | tuple[str, int]:
    """Mail a suppressed address again on its owner's request, once staff tick that the owner asked."""
    subscriber = _subscriber(subscriber_id)
    form = LiftSuppressionForm(formdata=request.form)
    if not form.validate():
        if "csrf_token" in form.errors:
            abort(400)
        return _page(subscriber, lift_error="Tick the box to confirm its owner asked; nothing changed."), 400
    if lift_suppression(subscriber, current_user.email, request.remote_addr):
        flash(f"{subscriber.email} is no longer suppressed; its status is now {subscriber.status}.")
    else:
        flash(f"{subscriber.email} was not suppressed; nothing changed.")
    return redirect(url_for(".show", subscriber_id=subscriber.id), 303)


@bp.post("/<int:subscriber_id>/erase")
def erase_on_request(subscriber_id: int) -> BaseResponse | tuple[str, int]:
    """Erase all the address's data on its owner's request, once the address is typed again to confirm."""
    subscriber = _subscriber(subscriber_id)
    if not SendForm(formdata=request.form).validate():
        abort(400)
    if request.form.get("confirm_email", "").strip().lower() != subscriber.email.lower():
        return _page(subscriber, "Type the address exactly as shown to confirm; nothing was erased."), 400
    marker = erase_subscriber(subscriber, current_user.email, request.remote_addr)
    # The address stays out of the flash message: it would travel in the session cookie.
    if marker is None:
        flash("That subscriber had been erased already.")
    else:
        flash(f"All data of the subscriber is erased; the audit log names it {marker}.")
    return redirect(url_for(".search"), 303)


@bp.get("/export.csv")
def export() -> Response:
    """Every subscriber as CSV, streamed (the same file as ``flask subscribers export``)."""

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for row in export_rows():
            writer.writerow(row)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    db.session.add(AuditEntry(actor=current_user.email, action="subscribers.export", ip=request.remote_addr))
    db.session.commit()
    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="subscribers.csv"'
    return response


def _subscriber(subscriber_id: int) -> Subscriber:
    """The subscriber with this id, or 404."""
    subscriber = subscriber_by_id(subscriber_id)
    if subscriber is None:
        abort(404)
    return subscriber
