"""Friendly error pages (JSON under /api/) for every HTTP error; nothing answers a bare 500."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

MESSAGES = {
    400: "The request could not be understood. Please go back and try again.",
    403: "Your account cannot use this page.",
    404: "There is nothing at this address.",
    405: "This page cannot be used that way.",
    413: "What was sent is too large.",
    429: "Too many requests from here. Please wait a while and try again.",
}


def error_page(error: HTTPException) -> tuple[Response | str, int]:
    """Render ``error`` as a page, or as JSON for API clients."""
    code = error.code or 500
    message = MESSAGES.get(code, "Something went wrong on our side. Please try again later.")
    if isinstance(error, CSRFError):
        message = "This form has expired. Please reload the page and try again."
    if request.path.startswith("/api/"):
        return jsonify(error=error.name.lower(), status=code), code
    return render_template("error.html", code=code, title=error.name, message=message), code


def unexpected(error: Exception) -> tuple[Response | str, int]:
    """A bug: log it with its traceback, answer with the friendly 500 page."""
    current_app.logger.exception("unhandled error", exc_info=error)
    return error_page(InternalServerError())


def register_error_pages(app: Flask) -> None:
    """Use the friendly pages for every HTTP error and for unexpected exceptions."""
    app.register_error_handler(HTTPException, error_page)
    if not app.config.get("TESTING"):
        # In tests a bug must surface as the exception it is, not as a page.
        app.register_error_handler(Exception, unexpected)
