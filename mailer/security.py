"""Security headers on every response, and the few policies that differ, defined here and nowhere else."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

P = ParamSpec("P")

#: Our pages: our own scripts, styles and images only, no plugins, never framed. ``form-action 'self'``
#: binds only forms on our pages; the subscribe widget is a form on other sites posting to us, which
#: our policy does not govern.
SITE_POLICY = "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
#: An email's HTML shown in a sandboxed frame of our own console: its inline styles and remote images
#: render, nothing runs or submits, and only our own pages may frame it.
MAIL_FRAME_POLICY = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"
#: Where a URL holds a secret link token: a path part of this name, or this query argument (archive links).
TOKEN_PATH_PART = "token"
TOKEN_QUERY_ARG = "t"


def init_app(app: Flask) -> None:
    """Set the security headers on every response of ``app``, errors and static files included."""
    # HTTPS is a deployment fact: HSTS on a plain-http service would only break a later move.
    https = str(app.config["BASE_URL"]).startswith("https://")

    @app.after_request
    def set_security_headers(response: Response) -> Response:
        """Add the headers; a policy a view chose itself (``mail_frame``) stays."""
        response.headers.setdefault("Content-Security-Policy", SITE_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer" if _carries_token() else "strict-origin-when-cross-origin"
        if https:
            response.headers["Strict-Transport-Security"] = HSTS
        return response


def mail_frame(view: Callable[P, Response]) -> Callable[P, Response]:
    """Serve what ``view`` returns (an email's HTML) under the mail-frame policy instead of the site's."""

    @wraps(view)
    def framed(*args: P.args, **kwargs: P.kwargs) -> Response:
        response = view(*args, **kwargs)
        response.headers["Content-Security-Policy"] = MAIL_FRAME_POLICY
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    return framed


def _carries_token() -> bool:
    """True when the requested URL holds a link token, so no page may pass it on as a referrer."""
    if TOKEN_QUERY_ARG in request.args:
        return True
    error = request.routing_exception
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        # A wrong method on a token URL (GET on a POST-only link) has no view args, but the token is in the path.
        return TOKEN_PATH_PART in _path_arguments(error.valid_methods[0])
    return TOKEN_PATH_PART in (request.view_args or {})


def _path_arguments(method: str) -> dict[str, object]:
    """The path arguments of the rule that matches this URL with ``method``."""
    try:
        return current_app.url_map.bind_to_environ(request.environ).match(method=method)[1]
    except HTTPException:  # not found, another method, or a redirect (a doubled slash): no token here
        return {}
