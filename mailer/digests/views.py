"""The public archive of sent digests: a list, one page per digest, and an Atom feed."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request

from ..extensions import limiter
from ..main.cache import public_page
from ..tokens import TokenInvalid, read_token
from .compose import sections
from .feed import atom_feed
from .service import archived_digest, sent_digests

bp = Blueprint("archive", __name__, url_prefix="/archive")


@bp.get("/")
@limiter.exempt  # see main.views.home
def index() -> Response:
    """The sent digests, newest first."""
    return public_page("archive", _render_index)


def _render_index() -> str:
    """The archive page from the database."""
    return render_template("archive/index.html", digests=sent_digests(), org_name=current_app.config["ORG_NAME"])


@bp.get("/<int:digest_id>")
def show(digest_id: int) -> str:
    """One digest as its subscribers got it (all its topics); a test digest needs its link's token."""
    digest = archived_digest(digest_id, token_holder=_holds_token(digest_id, request.args.get("t")))
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
    if not token:
        return False
    try:
        return read_token("archive", token, max_age=current_app.config["TEST_LINK_MAX_AGE"]) == digest_id
    except TokenInvalid:
        return False
