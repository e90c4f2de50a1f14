"""``POST /api/v1/subscriptions``: subscribe from the organisation's own site.

CSRF-exempt (a cross-site ``fetch`` cannot carry our token) but strict: a JSON object only,
known keys only, each of the right type, a small body. Cross-origin access is granted to
the origins in CORS_ORIGINS only. The answer to an accepted request never depends on the
address's state. Errors are answered by the view, not raised, so they carry CORS headers.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask_cors import cross_origin
from werkzeug.exceptions import RequestEntityTooLarge

from ..extensions import csrf
from ..models import Topic
from ..subscriptions.limits import Verdict
from ..subscriptions.service import InvalidInput, SubscriptionRequest, clean_email, clean_name, clean_topics
from ..subscriptions.web import accept_subscription

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

MAX_BODY = 8 * 1024
KEYS = ("email", "name", "topics", "website")
ACCEPTED = {
    "status": "accepted",
    "message": "Thank you. Check your inbox for an email to confirm your subscription.",
}


class Refused(Exception):
    """A request the API answers with a 4xx JSON error."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def answer(self) -> tuple[Response, int]:
        """The JSON error body and status."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return jsonify(body), self.status


@bp.post("/subscriptions")
@cross_origin(methods=["POST"], allow_headers=["Content-Type"], max_age=600)
def create_subscription() -> tuple[Response, int]:
    """Subscribe an address: 202 with a confirmation email on its way, or a 4xx JSON error."""
    try:
        _subscribe()
    except Refused as exc:
        return exc.answer()
    return jsonify(ACCEPTED), 202


def _subscribe() -> None:
    """Read and check one request, count it against the limits, act on it; raise Refused."""
    try:
        body = _json_object()
        req = None if body.get("website") else _subscription_request(body)
    except Refused:
        # Bad input counts against the client's budget too; over it, the answer is the 429.
        _raise_if_over(accept_subscription(None, "api"))
        raise
    _raise_if_over(accept_subscription(req, "api"))


def _raise_if_over(verdict: Verdict) -> None:
    """Raise the 429 that ``verdict`` calls for, if any."""
    if verdict is Verdict.CLIENT_OVER:
        raise Refused(429, "rate_limited", "Too many subscribe requests from here. Please try again later.")
    if verdict is Verdict.ADDRESS_OVER:
        raise Refused(429, "rate_limited", "Too many emails asked for this address. Please try again later.")


def _json_object() -> dict[str, Any]:
    """The request body as a JSON object; raise Refused for anything else."""
    if not request.is_json:
        raise Refused(415, "unsupported_media_type", "Send a JSON object with Content-Type: application/json.")
    request.max_content_length = MAX_BODY
    try:
        body = json.loads(request.get_data())
    except RequestEntityTooLarge:
        raise Refused(413, "too_large", f"The request body is larger than {MAX_BODY} bytes.") from None
    except (ValueError, RecursionError):
        raise Refused(400, "malformed_json", "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise Refused(400, "invalid", "The request body must be a JSON object.")
    return body


def _subscription_request(body: dict[str, Any]) -> SubscriptionRequest:
    """Check every field of ``body`` with the rules the form uses; raise Refused naming each bad one."""
    fields = {key[:64]: "Unknown field." for key in body if key not in KEYS}
    given = {"email": None, "name": None, "topics": list(Topic.names()), **body}
    values: dict[str, Any] = {}
    for key, clean in (("email", clean_email), ("name", clean_name), ("topics", clean_topics)):
        try:
            values[key] = clean(given[key])
        except InvalidInput as exc:
            fields[key] = exc.message
    if fields:
        raise Refused(400, "invalid", "Some fields are not valid.", fields)
    return SubscriptionRequest(**values)
