"""The console's feeds page: which feeds bring content in, how their last fetch went, and "Fetch now".

Any staff member may see the feeds and ask for a fetch; only admins add or remove one, because a
feed writes public content by itself. Removing is asked on a GET and done by a confirmed POST.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired

from ..feeds import service
from ..models import FEED_KINDS, MEETING_KINDS, Feed
from .auth import staff_only
from .forms import SendForm

#: Nested in the ``staff`` blueprint (see ``views.py``): its pages are /staff/feeds…, endpoints "staff.feeds.*".
bp = staff_only(Blueprint("feeds", __name__, url_prefix="/feeds"))
bp.add_app_template_global(service.item_source, "feed_source")


class FeedForm(FlaskForm):
    """A feed to add: its address, what its entries become, and for meetings their kind."""

    # The length is the service's to check, so a long address gets the same sentence everywhere.
    url = StringField(
        "Feed address (http:// or https://)", validators=[DataRequired(message="Enter the feed's address.")]
    )
    kind = SelectField(
        "Its entries become", choices=[SelectChoice(k, k.capitalize()) for k in FEED_KINDS], default="news"
    )
    meeting_kind = SelectField(
        "Kind of meeting (meetings feeds)",
        choices=[SelectChoice("", "Other")] + [SelectChoice(k, k) for k in MEETING_KINDS if k != "other"],
        default="",
    )


def _admins_only() -> None:
    """Adding and removing feeds is for admins; editors get 403."""
    if current_user.role != "admin":
        abort(403)


def _page(form: FeedForm | None = None, status: int = 200, confirm: Feed | None = None) -> tuple[str, int]:
    """The feeds with their state, the add form (admins), or the question before removing one."""
    return render_template(
        "staff/feeds.html", listing=service.list_feeds(), form=form or FeedForm(formdata=None),
        action=SendForm(formdata=None), confirm=confirm,
    ), status  # fmt: skip


@bp.get("/")
def index() -> tuple[str, int]:
    """Every feed: kind, last checked, last success, the failure in words, items brought."""
    return _page()


@bp.post("/")
def add() -> tuple[str, int] | Response:
    """Add the feed the form names (admins only); its first fetch comes within a minute."""
    _admins_only()
    form = FeedForm(formdata=request.form)
    if not form.validate():
        return _page(form, 400)
    kind = form.kind.data if form.kind.data in FEED_KINDS else ""
    meeting_kind = form.meeting_kind.data if kind == "meetings" else None
    try:
        feed = service.add_feed(form.url.data or "", kind, meeting_kind, actor=current_user.email)
    except service.FeedError as exc:
        getattr(form, exc.field, form.url).errors.append(str(exc)[:1].upper() + str(exc)[1:] + ".")
        return _page(form, 400)
    flash(f"Added {feed.url}: its first fetch comes within a minute.")
    return redirect(url_for(".index"), 303)


@bp.post("/<int:feed_id>/fetch")
def fetch_now(feed_id: int) -> Response:
    """Ask a worker to fetch one feed now."""
    if not SendForm(formdata=request.form).validate():
        abort(400)
    feed = service.find_feed(feed_id)
    if feed is None:
        abort(404)
    service.queue_fetch(feed.id, current_user.email)
    flash(f"Fetching {feed.url} now: reload this page in a moment to see how it went.")
    return redirect(url_for(".index"), 303)


@bp.route("/<int:feed_id>/remove", methods=["GET", "POST"])
def remove(feed_id: int) -> tuple[str, int] | Response:
    """Ask to confirm removing a feed (admins only); remove it when the confirmed form is posted."""
    _admins_only()
    feed = service.find_feed(feed_id)
    if feed is None:
        abort(404)
    if request.method == "GET":
        return _page(confirm=feed)
    if not SendForm(formdata=request.form).validate() or request.form.get("confirm") != "remove":
        abort(400)
    if service.remove_feed(feed.id, actor=current_user.email) is None:
        abort(404)  # removed meanwhile, by a replayed or concurrent request
    flash(f"Removed {feed.url}. The items it brought stay.")
    return redirect(url_for(".index"), 303)
