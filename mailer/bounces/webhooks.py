"""Provider webhooks: ``POST /webhooks/<provider>`` for Amazon SES (through SNS), Postmark, Mailgun and SendGrid.

Each provider proves a request its own way (SNS: an RSA signature by a certificate on an AWS
host; Postmark: HTTP basic auth; Mailgun: an HMAC with a fresh, single-use token; SendGrid: an
ECDSA signature with a fresh timestamp). A verified request becomes ``Notice``s that
``service.handle`` acts on at once, in this request: each is a few rows, and a provider retries
what got a 5xx. The provider's event id is the notice's ``event_key``, so a replay changes
nothing. A provider whose secret is not configured answers 404. CSRF-exempt (providers cannot
carry our token), JSON only, at most ``MAX_BODY`` bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
import urllib.request
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from ..extensions import csrf
from ..models import BounceKind
from ..redis_client import get_redis, redis_key
from .service import Notice, handle

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)

MAX_BODY = 1024 * 1024
#: How old (or how far ahead) a signed timestamp may be, in seconds (Mailgun, SendGrid).
MAX_AGE = 300
#: The setting that switches each provider's webhook on.
SECRETS = {
    "ses": "SES_TOPIC_ARNS",
    "postmark": "POSTMARK_WEBHOOK_AUTH",
    "mailgun": "MAILGUN_SIGNING_KEY",
    "sendgrid": "SENDGRID_WEBHOOK_PUBLIC_KEY",
}
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
#: The fields SNS signs, in order, per message type (Subject only when the message has one).
SNS_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SNS_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
#: Signing certificates by URL, fetched once per process.
_certificates: dict[str, x509.Certificate] = {}


class Refused(Exception):
    """A request answered with a 4xx (or 502) JSON error and no change."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


@bp.errorhandler(Refused)
def _refused(exc: Refused) -> tuple[Response, int]:
    """The JSON error for a refused request (401s ask for basic auth, as Postmark expects)."""
    response = jsonify(error=exc.code)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="webhooks"'
    return response, exc.status


@bp.post("/<provider>")
def receive(provider: str) -> tuple[Response, int]:
    """Verify a provider's request, then handle each bounce or complaint it reports."""
    setting = SECRETS.get(provider)
    if setting is None or not current_app.config.get(setting):
        raise Refused(404, "not_found")
    raw = _raw_body(("application/json", "text/plain") if provider == "ses" else ("application/json",))
    notices = READERS[provider](raw)
    outcomes = [handle(notice) for notice in notices]
    return jsonify(status="ok", outcomes=outcomes), 200


def _raw_body(types: tuple[str, ...]) -> bytes:
    """The request body, at most MAX_BODY bytes of one of ``types`` (SNS posts JSON as text/plain)."""
    if request.mimetype not in types:
        raise Refused(415, "unsupported_media_type")
    request.max_content_length = MAX_BODY
    try:
        return request.get_data()
    except RequestEntityTooLarge:
        raise Refused(413, "too_large") from None


def _parse(raw: bytes | str) -> Any:
    """JSON, or a 400."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise Refused(400, "malformed_json") from None


def _object(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else a 400."""
    if not isinstance(value, dict):
        raise Refused(400, "invalid")
    return value


def _objects(value: object) -> list[dict[str, Any]]:
    """The JSON objects in a list (anything else in it is skipped), or a 400 if it is no list."""
    if not isinstance(value, list):
        raise Refused(400, "invalid")
    return [item for item in value if isinstance(item, dict)]


def _text(value: object) -> str | None:
    """A string or number as text; None for anything else."""
    return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) and value != "" else None


def _event_key(provider: str, *parts: object) -> str:
    """``provider:id`` from the provider's event id; a 400 when the event has none."""
    texts = [_text(part) for part in parts]
    if None in texts:
        raise Refused(400, "invalid")
    return ":".join([provider, *texts])  # type: ignore[list-item]


def _check_fresh(timestamp: str) -> None:
    """Refuse a signed timestamp more than MAX_AGE seconds from now."""
    try:
        age = abs(time.time() - float(timestamp))
    except ValueError:
        raise Refused(403, "stale") from None
    if not age <= MAX_AGE:
        raise Refused(403, "stale")


# Amazon SES, through SNS.


def _ses(raw: bytes) -> list[Notice]:
    """Check an SNS message's topic and signature; confirm a subscription or read a notification."""
    envelope = _object(_parse(raw))
    if envelope.get("TopicArn") not in current_app.config["SES_TOPIC_ARNS"]:
        raise Refused(403, "unknown_topic")
    _verify_sns(envelope)
    if envelope["Type"] == "SubscriptionConfirmation":
        _sns_get(str(envelope.get("SubscribeURL", "")))
        current_app.logger.info("confirmed the SNS subscription to %s", envelope["TopicArn"])
        return []
    if envelope["Type"] != "Notification":
        return []
    return _ses_notices(_object(_parse(str(envelope.get("Message", "")))))


def _verify_sns(envelope: dict[str, Any]) -> None:
    """Refuse an SNS message unless its certificate's key signed AWS's canonical string of it."""
    fields = SNS_FIELDS.get(str(envelope.get("Type")))
    algorithm = SNS_HASHES.get(str(envelope.get("SignatureVersion")))
    if fields is None or algorithm is None or not envelope.get("Signature"):
        raise Refused(401, "unsigned")
    if not all(isinstance(envelope.get(name, ""), str) for name in fields):
        raise Refused(400, "invalid")
    canonical = "".join(f"{name}\n{envelope[name]}\n" for name in fields if envelope.get(name) is not None)
    key = _certificate(str(envelope.get("SigningCertURL", ""))).public_key()
    try:
        if not isinstance(key, rsa.RSAPublicKey):
            raise InvalidSignature
        signature = base64.b64decode(str(envelope["Signature"]), validate=True)
        key.verify(signature, canonical.encode(), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, ValueError, binascii.Error):
        raise Refused(403, "bad_signature") from None


def _certificate(url: str) -> x509.Certificate:
    """The SNS signing certificate at ``url``, fetched once per process (only from an allowed host)."""
    certificate = _certificates.get(url)
    if certificate is None:
        try:
            certificate = x509.load_pem_x509_certificate(_sns_get(url))
        except ValueError:
            raise Refused(502, "bad_certificate") from None
        _certificates[url] = certificate
    return certificate


def _sns_get(url: str) -> bytes:
    """GET an https URL on an allowed SNS host (SES_CERT_HOSTS); refuse any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not re.search(current_app.config["SES_CERT_HOSTS"], parts.hostname or ""):
        raise Refused(403, "foreign_host")
    try:
        return _open(url)
    except OSError as exc:  # URLError, HTTPError (a redirect too), timeouts
        current_app.logger.warning("SNS fetch failed: %s: %s", url, exc)
        raise Refused(502, "sns_unreachable") from None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: it could lead off the allowed hosts."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        """Refuse every redirect."""
        return None


def _open(url: str) -> bytes:
    """The body at ``url`` (at most 64 KiB), with no redirects."""
    with urllib.request.build_opener(_NoRedirect).open(url, timeout=10) as answer:
        return answer.read(64 * 1024)


def _ses_notices(message: dict[str, Any]) -> list[Notice]:
    """One notice per bounced or complaining recipient of an SES notification or event."""
    kind = message.get("notificationType") or message.get("eventType")
    message_id = _ses_message_id(message.get("mail"))
    if kind == "Bounce":
        bounce = _object(message.get("bounce"))
        hard = bounce.get("bounceType") == "Permanent"
        return [
            _ses_notice(BounceKind.HARD if hard else BounceKind.SOFT, bounce, r, message_id)
            for r in _objects(bounce.get("bouncedRecipients"))
        ]
    if kind == "Complaint":
        complaint = _object(message.get("complaint"))
        return [
            _ses_notice(BounceKind.COMPLAINT, complaint, r, message_id)
            for r in _objects(complaint.get("complainedRecipients"))
        ]
    return []


def _ses_notice(kind: BounceKind, report: dict[str, Any], recipient: dict[str, Any], message_id: str | None) -> Notice:
    """The notice for one recipient of an SES bounce or complaint (its key: feedback id and address)."""
    address = _text(recipient.get("emailAddress"))
    return Notice(
        kind=kind,
        source="ses",
        event_key=_event_key("ses", report.get("feedbackId"), address),
        message_id=message_id,
        address=address,
        status=_text(recipient.get("status")),
        diagnostic=_text(recipient.get("diagnosticCode")) or _text(report.get("complaintFeedbackType")),
    )


def _ses_message_id(mail: object) -> str | None:
    """Our Message-ID from SES's copy of the original headers, if it kept them."""
    if not isinstance(mail, dict):
        return None
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and _text(common.get("messageId")):
        return _text(common.get("messageId"))
    headers = mail.get("headers") if isinstance(mail.get("headers"), list) else []
    found = (h.get("value") for h in headers if isinstance(h, dict) and str(h.get("name")).lower() == "message-id")
    return _text(next(found, None))


# Postmark.


def _postmark(raw: bytes) -> list[Notice]:
    """Check Postmark's basic auth; read one Bounce or SpamComplaint record."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise Refused(401, "unauthorized")
    given = f"{auth.username}:{auth.password}".encode()
    if not hmac.compare_digest(given, str(current_app.config["POSTMARK_WEBHOOK_AUTH"]).encode()):
        raise Refused(401, "unauthorized")
    record = _object(_parse(raw))
    kind = _postmark_kind(record)
    if kind is None:
        return []
    return [
        Notice(
            kind=kind,
            source="postmark",
            event_key=_event_key("postmark", record.get("ID")),
            address=_text(record.get("Email")),
            status=_text(record.get("Type")),
            diagnostic=_text(record.get("Details")) or _text(record.get("Description")),
        )
    ]


def _postmark_kind(record: dict[str, Any]) -> BounceKind | None:
    """What a Postmark record reports: HardBounce, SoftBounce or Transient, a spam complaint, or nothing we act on."""
    if record.get("RecordType") == "SpamComplaint":
        return BounceKind.COMPLAINT
    if record.get("RecordType") != "Bounce":
        return None
    kinds = {"HardBounce": BounceKind.HARD, "SoftBounce": BounceKind.SOFT, "Transient": BounceKind.SOFT}
    return kinds.get(str(record.get("Type")))


# Mailgun.


def _mailgun(raw: bytes) -> list[Notice]:
    """Check Mailgun's HMAC, timestamp and single-use token; read the failed or complained event."""
    body = _object(_parse(raw))
    signed = body.get("signature")
    if not isinstance(signed, dict) or not all(_text(signed.get(k)) for k in ("timestamp", "token", "signature")):
        raise Refused(401, "unsigned")
    timestamp, token, signature = (str(signed[k]) for k in ("timestamp", "token", "signature"))
    key = str(current_app.config["MAILGUN_SIGNING_KEY"]).encode()
    expected = hmac.new(key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Refused(403, "bad_signature")
    _check_fresh(timestamp)
    notice = _mailgun_notice(_object(body.get("event-data")))
    # Set only if new, kept while the timestamp stays acceptable: a token is good once.
    if not get_redis().set(redis_key(f"webhooks:mailgun:{token[:200]}"), 1, nx=True, ex=2 * MAX_AGE):
        raise Refused(403, "replayed")
    return [notice] if notice else []


def _mailgun_notice(event: dict[str, Any]) -> Notice | None:
    """The notice for a Mailgun "failed" (permanent or temporary) or "complained" event."""
    name, severity = str(event.get("event")), str(event.get("severity"))
    kinds = {("failed", "permanent"): BounceKind.HARD, ("failed", "temporary"): BounceKind.SOFT}
    kind = BounceKind.COMPLAINT if name == "complained" else kinds.get((name, severity))
    if kind is None:
        return None
    status = event.get("delivery-status") if isinstance(event.get("delivery-status"), dict) else {}
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    return Notice(
        kind=kind,
        source="mailgun",
        event_key=_event_key("mailgun", event.get("id")),
        message_id=_text(headers.get("message-id")),
        address=_text(event.get("recipient")),
        status=_text(status.get("code")),
        diagnostic=_text(status.get("message")) or _text(status.get("description")) or _text(event.get("reason")),
    )


# SendGrid.


@lru_cache(maxsize=4)
def _sendgrid_key(der: bytes) -> ec.EllipticCurvePublicKey:
    """The configured public key (config.py checked that it is ECDSA P-256)."""
    return serialization.load_der_public_key(der)  # type: ignore[return-value]


def _sendgrid(raw: bytes) -> list[Notice]:
    """Check SendGrid's ECDSA signature over timestamp and body and the timestamp's age; read its events."""
    signature, timestamp = request.headers.get(SENDGRID_SIGNATURE), request.headers.get(SENDGRID_TIMESTAMP)
    if not signature or not timestamp:
        raise Refused(401, "unsigned")
    key = _sendgrid_key(current_app.config["SENDGRID_WEBHOOK_PUBLIC_KEY"])
    try:
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + raw, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise Refused(403, "bad_signature") from None
    _check_fresh(timestamp)
    return [n for n in map(_sendgrid_notice, _objects(_parse(raw))) if n is not None]


def _sendgrid_notice(event: dict[str, Any]) -> Notice | None:
    """The notice for a SendGrid bounce (or block), a drop for a bounced address, or a spam report."""
    name, reason = event.get("event"), _text(event.get("reason")) or ""
    if name == "bounce":
        kind = BounceKind.SOFT if event.get("type") == "blocked" else BounceKind.HARD
    elif name == "dropped" and "bounced address" in reason.lower():
        kind = BounceKind.HARD
    elif name == "spamreport":
        kind = BounceKind.COMPLAINT
    else:
        return None
    return Notice(
        kind=kind,
        source="sendgrid",
        event_key=_event_key("sendgrid", event.get("sg_event_id")),
        message_id=_text(event.get("smtp-id")),
        address=_text(event.get("email")),
        status=_text(event.get("status")),
        diagnostic=reason or None,
    )


READERS: dict[str, Callable[[bytes], list[Notice]]] = {
    "ses": _ses,
    "postmark": _postmark,
    "mailgun": _mailgun,
    "sendgrid": _sendgrid,
}
