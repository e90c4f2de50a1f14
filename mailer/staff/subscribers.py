"""The console's subscriber pages: find an address, see its history, unsubscribe or erase it on request, export.

For the questions a communications team gets ("did I confirm?", "please take me off", "delete
everything you hold on me"): the status, topics, consent log and recent deliveries of one address,
and an unsubscribe or an erasure made on the person's behalf that is recorded as such.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ..bounces.report import subscriber_bounces
from ..extensions import db
from ..models import AuditEntry, Subscriber, Topic
from ..subscriptions.erasure import erase_subscriber
from ..subscriptions.lookup import consent_log, find_by_address, recent_deliveries, subscriber_by_id
from ..subscriptions.service import lift_suppression, revoke_links, unsubscribe_for_owner
from ..subscriptions.transfer import export_rows
from ..subscriptions.web import client_consent
from ..text import without_control
from .auth import staff_only
from .forms import LiftSuppressionForm, SendForm

bp = staff_only(Blueprint("staff_subscribers", __name__, url_prefix="/staff/subscribers"))
SHOWN = 50
MAX_QUERY = 254


@bp.get("/")
def search() -> str:
    """Addresses containing the search text (case-insensitive), newest first."""
    # No address holds control characters (and PostgreSQL refuses NUL in a query parameter).
    query = without_control(request.args.get("q", "")).strip()[:MAX_QUERY]
    found = find_by_address(query, SHOWN) if query else []
    return render_template("staff/subscribers.html", query=query, found=found, shown=SHOWN)


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
