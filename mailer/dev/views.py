"""Caught-mail pages: a list of every message the development SMTP server received."""

from __future__ import annotations

import mailbox
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from flask import Blueprint, Response, abort, current_app, render_template

from ..security import mail_frame
from .smtp import caught_mail_path

bp = Blueprint("dev", __name__, url_prefix="/dev/mail")


def _maildir() -> mailbox.Maildir:
    """The caught-mail Maildir of this instance."""
    return mailbox.Maildir(str(caught_mail_path(current_app.instance_path)), create=True)


def _parse(raw: bytes) -> EmailMessage:
    """Parse raw bytes into a modern EmailMessage."""
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


def _load(key: str) -> EmailMessage:
    """Return one caught message, or 404."""
    box = _maildir()
    if key not in box:
        abort(404)
    return _parse(box.get_bytes(key))


@bp.get("/")
def index() -> str:
    """Every caught message, newest first."""
    box = _maildir()
    rows = []
    for key in box.iterkeys():
        msg = _parse(box.get_bytes(key))
        when = box.get_message(key).get_date()
        rows.append({"key": key, "date": msg["Date"], "to": msg["To"], "subject": msg["Subject"], "when": when})
    rows.sort(key=lambda r: r["when"], reverse=True)
    return render_template("dev/mail_index.html", rows=rows)


@bp.get("/<key>")
def show(key: str) -> str:
    """One message: headers, the text part and the HTML part in a sandboxed frame."""
    msg = _load(key)
    text = msg.get_body(preferencelist=("plain",))
    return render_template(
        "dev/mail_show.html", key=key, msg=msg, headers=list(msg.items()), text=text.get_content() if text else ""
    )


@bp.get("/<key>/html")
@mail_frame
def html(key: str) -> Response:
    """The HTML part alone, served with a policy that runs no script."""
    part = _load(key).get_body(preferencelist=("html",))
    if part is None:
        abort(404)
    return Response(part.get_content(), mimetype="text/html")


@bp.get("/<key>/raw")
def raw(key: str) -> Response:
    """The message exactly as received."""
    box = _maildir()
    if key not in box:
        abort(404)
    return Response(box.get_bytes(key), mimetype="text/plain")
