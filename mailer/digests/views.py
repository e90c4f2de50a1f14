"""The public archive of sent digests: a list, one page per digest number, an Atom feed, and test copies' pages."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from ..extensions import limiter
from ..main.cache import public_page
from ..tokens import TokenInvalid, read_token
from .compose import sections
from .feed import atom_feed
from .service import MAX_ID, archived_digest, find_test_send, sent_digests

bp = Blueprint("archive", __name__, url_prefix="/archive")


@bp.get("/")
@limiter.exempt  # see main.views.home
def index() -> Response:
    """The sent digests, newest first."""
    return public_page("archive", _render_index)


def _render_index() -> str:
    """The archive page from the database."""
    return render_template("archive/index.html", digests=sent_digests(), org_name=current_app.config["ORG_NAME"])


@bp.get("/<int:number>")
def show(number: int) -> str | BaseResponse:
    """Digest ``number`` as its subscribers got it (all its topics)."""
    token = request.args.get("t")
    if _holds_token(number, token):  # a test copy's link from before test copies moved to /archive/test/
        return redirect(url_for(".show_test", digest_id=number, t=token), 301)
    digest = archived_digest(number)
    if digest is None:
        abort(404)
    return render_template("archive/show.html", digest=digest, sections=sections(digest.content, digest.topics))


@bp.get("/test/<int:digest_id>")
def show_test(digest_id: int) -> str:
    """A test copy's page: only with the token its "view in browser" link carries."""
    digest = find_test_send(digest_id) if _holds_token(digest_id, request.args.get("t")) else None
    if digest is None:
        abort(404)
    return render_template("archive/show.html", digest=digest, sections=sections(digest.content, digest.topics))


@bp.get("/feed.atom")
@limiter.exempt  # see main.views.home
def feed() -> Response:
    """The archive as an Atom feed."""
    return public_page("archive-feed", _render_feed, mimetype="application/atom+xml")


def _render_feed() -> bytes:
    """The feed document from the database."""
    return atom_feed(sent_digests(limit=20), current_app.config["BASE_URL"], current_app.config["ORG_NAME"])


def _holds_token(digest_id: int, token: str | None) -> bool:
    """True when ``token`` is a genuine archive token for this digest."""
    if not token or not 0 < digest_id <= MAX_ID:
        return False
    try:
        return read_token("archive", token, max_age=current_app.config["TEST_LINK_MAX_AGE"]) == digest_id
    except TokenInvalid:
        return False
