"""Provider webhooks: SES through SNS, Postmark, Mailgun and SendGrid report bounces and complaints, signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from mailer.bounces import webhooks
from mailer.config import ConfigError, load_config
from mailer.extensions import db
from mailer.models import ALL_TOPICS, BounceEvent, ConsentEvent, Delivery, Digest, Subscriber, utcnow

TOPIC = "arn:aws:sns:eu-west-1:123456789012:mailer-bounces"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
POSTMARK_AUTH = "postmark:s3cret-pass"
MAILGUN_KEY = "key-mailgun-signing"
READERS = ("ann@example.org", "bob@example.org", "cy@example.org")


def _rsa_certificate(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A self-signed certificate for ``key``, standing in for SNS's signing certificate."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
    return builder.not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256())


SNS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SNS_CERT = _rsa_certificate(SNS_KEY)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _der(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The DER SubjectPublicKeyInfo of ``key``'s public half."""
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def configured(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """Every provider switched on, SNS's certificate known for CERT_URL, and three confirmed readers."""
    app.config.update(
        SES_TOPIC_ARNS=[TOPIC],
        POSTMARK_WEBHOOK_AUTH=POSTMARK_AUTH,
        MAILGUN_SIGNING_KEY=MAILGUN_KEY,
        SENDGRID_WEBHOOK_PUBLIC_KEY=_der(SENDGRID_KEY),
    )
    monkeypatch.setitem(webhooks._certificates, CERT_URL, SNS_CERT)
    with app.app_context():
        db.session.add_all(
            Subscriber(email=e, topics=ALL_TOPICS, status="confirmed", confirmed_at=utcnow()) for e in READERS
        )
        db.session.commit()
    return app


def _statuses(app: Flask) -> dict[str, str]:
    """Every subscriber's status, by address."""
    with app.app_context():
        return dict(db.session.execute(db.select(Subscriber.email, Subscriber.status)).all())


def _event_count(app: Flask) -> int:
    """How many bounce events are recorded."""
    with app.app_context():
        return len(db.session.execute(db.select(BounceEvent.id)).all())


def _unchanged(app: Flask, send: Callable[[], TestResponse], status: int) -> None:
    """``send`` is answered ``status`` and changes no subscriber and records no event."""
    before = (_statuses(app), _event_count(app))
    response = send()
    assert response.status_code == status, response.get_data(as_text=True)
    assert (_statuses(app), _event_count(app)) == before


# Amazon SES through SNS.


def _sns(kind: str, fields: dict[str, str], version: str = "2", key: rsa.RSAPrivateKey = SNS_KEY) -> dict[str, str]:
    """An SNS message of type ``kind`` signed as SNS signs it (canonical fields in AWS's order)."""
    message = {"Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": TOPIC, "Timestamp": "2026-11-29T12:00:00Z"}
    message.update(fields)
    names = webhooks.SNS_FIELDS[kind]
    canonical = "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(canonical, padding.PKCS1v15(), algorithm)
    message.update(SignatureVersion=version, Signature=base64.b64encode(signature).decode(), SigningCertURL=CERT_URL)
    return message


def _ses_bounce(address: str, bounce_type: str = "Permanent", feedback: str = "fb-1") -> dict[str, Any]:
    """An SES bounce notification for ``address``."""
    recipient = {"emailAddress": address, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
    return {
        "notificationType": "Bounce",
        "bounce": {"bounceType": bounce_type, "feedbackId": feedback, "bouncedRecipients": [recipient]},
        "mail": {"messageId": "ses-id", "commonHeaders": {"messageId": "<nothing-we-sent@example.org>"}},
    }


def _post_sns(client: FlaskClient, message: dict[str, str]) -> TestResponse:
    """POST an SNS message as SNS does (JSON sent as text/plain)."""
    return client.post("/webhooks/ses", data=json.dumps(message), content_type="text/plain; charset=UTF-8")


def test_ses_bounces_and_complaints_suppress_once(configured: Flask, client: FlaskClient) -> None:
    """A permanent bounce suppresses (replayed: a duplicate), a transient one counts, a complaint suppresses."""
    hard = _sns("Notification", {"Message": json.dumps(_ses_bounce("ann@example.org")), "Subject": "bounce"})
    assert _post_sns(client, hard).get_json() == {"status": "ok", "outcomes": ["suppressed"]}
    assert _post_sns(client, hard).get_json()["outcomes"] == ["duplicate"]
    soft = _ses_bounce("cy@example.org", "Transient", "fb-2")
    assert _post_sns(client, _sns("Notification", {"Message": json.dumps(soft)}, "1")).get_json()["outcomes"] == [
        "counted"
    ]
    complaint = {
        "eventType": "Complaint",
        "complaint": {"feedbackId": "fb-3", "complainedRecipients": [{"emailAddress": "bob@example.org"}]},
    }
    response = _post_sns(client, _sns("Notification", {"Message": json.dumps(complaint)}, "1"))
    assert response.get_json()["outcomes"] == ["suppressed"]
    assert _statuses(configured) == {
        "ann@example.org": "suppressed",
        "bob@example.org": "suppressed",
        "cy@example.org": "confirmed",
    }
    assert _event_count(configured) == 3
    with configured.app_context():
        events = db.session.execute(db.select(ConsentEvent.event)).scalars().all()
        assert sorted(events) == ["complaint", "suppress"]


def test_ses_subscription_is_confirmed_on_an_sns_host_only(
    configured: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signed SubscriptionConfirmation GETs its SubscribeURL; one pointing elsewhere is refused."""
    fetched: list[str] = []
    monkeypatch.setattr(webhooks, "_open", lambda url: fetched.append(url) or b"<ConfirmSubscriptionResponse/>")
    subscribe = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t"
    fields = {"Message": "You have chosen to subscribe", "SubscribeURL": subscribe, "Token": "t"}
    assert _post_sns(client, _sns("SubscriptionConfirmation", fields)).status_code == 200
    assert fetched == [subscribe]
    fields["SubscribeURL"] = "https://attacker.example/?Action=ConfirmSubscription"
    assert _post_sns(client, _sns("SubscriptionConfirmation", fields)).status_code == 403
    assert fetched == [subscribe]


def test_ses_fetches_a_signing_certificate_once(
    configured: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown SigningCertURL on an SNS host is fetched (no redirects) and then served from the cache."""
    fetched: list[str] = []
    pem = SNS_CERT.public_bytes(serialization.Encoding.PEM)
    monkeypatch.setattr(webhooks, "_open", lambda url: fetched.append(url) or pem)
    monkeypatch.delitem(webhooks._certificates, CERT_URL)
    for number in (1, 2):
        message = _sns("Notification", {"Message": json.dumps(_ses_bounce("cy@example.org", "Transient", f"{number}"))})
        assert _post_sns(client, message).status_code == 200
    assert fetched == [CERT_URL]


def test_sns_fetches_follow_no_redirect() -> None:
    """A redirect (it could lead off the SNS hosts) is an error, not followed."""

    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
            """Send every request elsewhere."""
            self.send_response(302)
            self.send_header("Location", "http://attacker.example/cert.pem")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            """Keep the test output quiet."""

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        with pytest.raises(HTTPError):
            webhooks._open(f"http://127.0.0.1:{server.server_port}/cert.pem")
    finally:
        server.shutdown()
        server.server_close()


def test_ses_refuses_unsigned_forged_and_foreign_messages(configured: Flask, client: FlaskClient) -> None:
    """No signature, a changed message, another key, another topic, a certificate elsewhere: 4xx, no change."""
    body = {"Message": json.dumps(_ses_bounce("ann@example.org"))}
    unsigned = {k: v for k, v in _sns("Notification", body).items() if k != "Signature"}
    _unchanged(configured, lambda: _post_sns(client, unsigned), 401)
    changed = _sns("Notification", body) | {"Message": json.dumps(_ses_bounce("bob@example.org"))}
    _unchanged(configured, lambda: _post_sns(client, changed), 403)
    _unchanged(configured, lambda: _post_sns(client, _sns("Notification", body, key=OTHER_RSA_KEY)), 403)
    other_topic = _sns("Notification", body | {"TopicArn": "arn:aws:sns:eu-west-1:999999999999:other"})
    _unchanged(configured, lambda: _post_sns(client, other_topic), 403)
    for url in (
        "https://sns.eu-west-1.amazonaws.com.attacker.example/c.pem",
        "http://sns.eu-west-1.amazonaws.com/c.pem",
    ):
        foreign = _sns("Notification", body) | {"SigningCertURL": url}
        _unchanged(configured, lambda message=foreign: _post_sns(client, message), 403)


# Postmark.


def _postmark(client: FlaskClient, record: dict[str, Any] | str, auth: str | None = POSTMARK_AUTH) -> TestResponse:
    """POST a Postmark record with basic auth ``auth``."""
    headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}
    data = record if isinstance(record, str) else json.dumps(record)
    return client.post("/webhooks/postmark", data=data, headers=headers, content_type="application/json")


def test_postmark_bounces_and_complaints(configured: Flask, client: FlaskClient) -> None:
    """HardBounce suppresses once, SoftBounce counts, SpamComplaint suppresses; bad credentials change nothing."""
    hard = {"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "Email": "ann@example.org", "MessageID": "pm-1"}
    assert _postmark(client, hard).get_json()["outcomes"] == ["suppressed"]
    assert _postmark(client, hard).get_json()["outcomes"] == ["duplicate"]
    soft = hard | {"ID": 43, "Type": "SoftBounce", "Email": "cy@example.org"}
    assert _postmark(client, soft).get_json()["outcomes"] == ["counted"]
    spam = {"RecordType": "SpamComplaint", "ID": 44, "Type": "SpamComplaint", "Email": "bob@example.org"}
    _unchanged(configured, lambda: _postmark(client, spam, auth=None), 401)
    _unchanged(configured, lambda: _postmark(client, spam, auth="postmark:wrong"), 401)
    _unchanged(configured, lambda: _postmark(client, "{not json"), 400)
    assert _postmark(client, spam).get_json()["outcomes"] == ["suppressed"]
    assert _statuses(configured)["bob@example.org"] == "suppressed"
    assert _statuses(configured)["cy@example.org"] == "confirmed"


# Mailgun.


def _mailgun_body(event: dict[str, Any], key: str = MAILGUN_KEY, age: float = 0) -> dict[str, Any]:
    """A Mailgun webhook body for ``event``, signed with ``key`` ``age`` seconds ago with a fresh token."""
    timestamp, token = str(int(time.time() - age)), uuid.uuid4().hex
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}


def _mailgun_event(
    address: str, event: str = "failed", severity: str = "permanent", ident: str = "mg-1"
) -> dict[str, Any]:
    """A Mailgun event about ``address``."""
    return {
        "id": ident,
        "event": event,
        "severity": severity,
        "recipient": address,
        "message": {"headers": {"message-id": "nothing-we-sent@example.org"}},
        "delivery-status": {"code": 550, "message": "5.1.1 user unknown"},
    }


def test_mailgun_failures_and_complaints(configured: Flask, client: FlaskClient) -> None:
    """A permanent failure suppresses; its replay is refused and a re-signed copy is a duplicate."""
    body = _mailgun_body(_mailgun_event("ann@example.org"))
    assert client.post("/webhooks/mailgun", json=body).get_json()["outcomes"] == ["suppressed"]
    _unchanged(configured, lambda: client.post("/webhooks/mailgun", json=body), 403)
    again = _mailgun_body(_mailgun_event("ann@example.org"))
    assert client.post("/webhooks/mailgun", json=again).get_json()["outcomes"] == ["duplicate"]
    soft = _mailgun_body(_mailgun_event("cy@example.org", severity="temporary", ident="mg-2"))
    assert client.post("/webhooks/mailgun", json=soft).get_json()["outcomes"] == ["counted"]
    complained = _mailgun_body(_mailgun_event("bob@example.org", event="complained", ident="mg-3"))
    assert client.post("/webhooks/mailgun", json=complained).get_json()["outcomes"] == ["suppressed"]
    assert _event_count(configured) == 3


def test_a_webhook_bounce_finds_the_delivery_by_our_message_id(configured: Flask, client: FlaskClient) -> None:
    """Mailgun quotes our Message-ID (without brackets): that delivery bounces and its subscriber is suppressed."""
    with configured.app_context():
        ann = db.session.execute(db.select(Subscriber).where(Subscriber.email == "ann@example.org")).scalar_one()
        digest = Digest(subject="News", until=utcnow(), content={}, topics=ALL_TOPICS)
        db.session.add(digest)
        db.session.flush()
        delivery = Delivery(
            digest_id=digest.id, subscriber_id=ann.id, email=ann.email, topics=ALL_TOPICS, status="sent",
            message_id="<d1.x@news.example.org>",
        )  # fmt: skip
        db.session.add(delivery)
        db.session.commit()
    event = _mailgun_event("ann+forwarded@elsewhere.example") | {
        "message": {"headers": {"message-id": "d1.x@news.example.org"}}
    }
    assert client.post("/webhooks/mailgun", json=_mailgun_body(event)).get_json()["outcomes"] == ["suppressed"]
    assert _statuses(configured)["ann@example.org"] == "suppressed"
    with configured.app_context():
        assert db.session.execute(db.select(Delivery.status)).scalar_one() == "bounced"


def test_mailgun_refuses_unsigned_wrongly_signed_and_stale(configured: Flask, client: FlaskClient) -> None:
    """No signature, another key, a changed token, a timestamp over five minutes old: refused, no change."""
    event = _mailgun_event("ann@example.org")
    _unchanged(configured, lambda: client.post("/webhooks/mailgun", json={"event-data": event}), 401)
    _unchanged(configured, lambda: client.post("/webhooks/mailgun", json=_mailgun_body(event, key="other")), 403)
    changed = _mailgun_body(event)
    changed["signature"]["token"] = uuid.uuid4().hex
    _unchanged(configured, lambda: client.post("/webhooks/mailgun", json=changed), 403)
    _unchanged(configured, lambda: client.post("/webhooks/mailgun", json=_mailgun_body(event, age=301)), 403)


# SendGrid.


def _sendgrid(
    client: FlaskClient,
    events: list[dict[str, Any]] | bytes,
    key: ec.EllipticCurvePrivateKey = SENDGRID_KEY,
    age: float = 0,
) -> TestResponse:
    """POST SendGrid events signed with ``key`` over timestamp and body, ``age`` seconds ago."""
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    timestamp = str(int(time.time() - age))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        webhooks.SENDGRID_SIGNATURE: base64.b64encode(signature).decode(),
        webhooks.SENDGRID_TIMESTAMP: timestamp,
    }
    return client.post("/webhooks/sendgrid", data=body, headers=headers, content_type="application/json")


SENDGRID_EVENTS = [
    {"event": "bounce", "type": "bounce", "email": "ann@example.org", "sg_event_id": "sg-1", "status": "5.1.1",
     "reason": "550 5.1.1 user unknown", "smtp-id": "<nothing-we-sent@example.org>"},
    {"event": "bounce", "type": "blocked", "email": "cy@example.org", "sg_event_id": "sg-2", "reason": "blocked"},
    {"event": "spamreport", "email": "bob@example.org", "sg_event_id": "sg-3"},
    {"event": "delivered", "email": "cy@example.org", "sg_event_id": "sg-4"},
    {"event": "dropped", "email": "ann@example.org", "sg_event_id": "sg-5", "reason": "Bounced Address"},
]  # fmt: skip


def test_sendgrid_events(configured: Flask, client: FlaskClient) -> None:
    """Bounce and bounced-address drop suppress, a block counts, a spam report suppresses; a replay changes nothing."""
    assert _sendgrid(client, SENDGRID_EVENTS).get_json()["outcomes"] == [
        "suppressed",
        "counted",
        "suppressed",
        "recorded",
    ]
    assert _sendgrid(client, SENDGRID_EVENTS).get_json()["outcomes"] == ["duplicate"] * 4
    assert _statuses(configured) == {
        "ann@example.org": "suppressed",
        "bob@example.org": "suppressed",
        "cy@example.org": "confirmed",
    }
    assert _event_count(configured) == 4


def test_sendgrid_refuses_unsigned_wrongly_signed_and_stale(configured: Flask, client: FlaskClient) -> None:
    """No headers, another key, a stale timestamp, a changed body: refused; a signed non-JSON body is a 400."""
    body = json.dumps(SENDGRID_EVENTS).encode()
    _unchanged(configured, lambda: client.post("/webhooks/sendgrid", data=body, content_type="application/json"), 401)
    _unchanged(configured, lambda: _sendgrid(client, SENDGRID_EVENTS, key=OTHER_EC_KEY), 403)
    _unchanged(configured, lambda: _sendgrid(client, SENDGRID_EVENTS, age=301), 403)
    good = _sendgrid(client, b"[]")
    assert good.status_code == 200
    _unchanged(configured, lambda: _sendgrid(client, b"[not json"), 400)
    _unchanged(configured, lambda: _sendgrid(client, b"{}"), 400)


# Every provider.


@pytest.mark.parametrize("provider", ["ses", "postmark", "mailgun", "sendgrid"])
def test_a_provider_without_its_secret_is_switched_off(app: Flask, client: FlaskClient, provider: str) -> None:
    """Nothing configured: 404, before the body is even read."""
    assert client.post(f"/webhooks/{provider}", json={}).status_code == 404


def test_unknown_provider_oversized_and_non_json_bodies(configured: Flask, client: FlaskClient) -> None:
    """An unknown provider is a 404, a body over 1 MB a 413, a form post a 415."""
    assert client.post("/webhooks/elsewhere", json={}).status_code == 404
    big = b"[" + b" " * webhooks.MAX_BODY + b"]"
    _unchanged(configured, lambda: _sendgrid(client, big), 413)
    _unchanged(configured, lambda: client.post("/webhooks/mailgun", data={"event-data": "x"}), 415)


ODD_SHAPES = [[], 1, "x", None, {"ID": [1]}, {"RecordType": "Bounce", "Type": ["HardBounce"], "ID": {}}]


@pytest.mark.parametrize("shape", ODD_SHAPES, ids=range(len(ODD_SHAPES)))
def test_authentic_requests_of_odd_shapes_are_never_a_500(configured: Flask, client: FlaskClient, shape: Any) -> None:
    """Well-signed JSON of unexpected shapes is a 400 or ignored, never a server error."""
    assert _postmark(client, json.dumps(shape)).status_code in (200, 400)
    mailgun = _mailgun_body(shape) | ({"event-data": {"event": ["failed"], "id": {}}} if shape == [] else {})
    assert client.post("/webhooks/mailgun", json=mailgun).status_code in (200, 400)
    assert _sendgrid(client, json.dumps([shape]).encode()).status_code in (200, 400)
    sns = _sns("Notification", {"Message": json.dumps(shape)}) | {"Type": [shape]}
    assert _post_sns(client, sns).status_code in (400, 401)
    assert _post_sns(client, _sns("Notification", {"Message": json.dumps(shape)})).status_code in (200, 400)


# Configuration.


def test_webhook_settings_are_read(tmp_path: Path) -> None:
    """Topic ARNs as a list, the SendGrid key from PEM or base64 DER as DER, the rest as given."""
    pem = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {
        "SES_TOPIC_ARNS": f"{TOPIC}, arn:aws-cn:sns:cn-north-1:123456789012:other",
        "POSTMARK_WEBHOOK_AUTH": POSTMARK_AUTH,
        "MAILGUN_SIGNING_KEY": MAILGUN_KEY,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": pem.decode(),
    }
    config = load_config(env, str(tmp_path))
    assert config["SES_TOPIC_ARNS"] == [TOPIC, "arn:aws-cn:sns:cn-north-1:123456789012:other"]
    assert config["SENDGRID_WEBHOOK_PUBLIC_KEY"] == _der(SENDGRID_KEY)
    assert config["POSTMARK_WEBHOOK_AUTH"] == POSTMARK_AUTH
    env["SENDGRID_WEBHOOK_PUBLIC_KEY"] = base64.b64encode(_der(SENDGRID_KEY)).decode()
    assert load_config(env, str(tmp_path))["SENDGRID_WEBHOOK_PUBLIC_KEY"] == _der(SENDGRID_KEY)
    assert load_config({}, str(tmp_path))["SES_TOPIC_ARNS"] == []


RSA_PUBLIC_DER = base64.b64encode(
    OTHER_RSA_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SES_TOPIC_ARNS", "my-topic"),
        ("SES_CERT_HOSTS", "(unclosed"),
        ("POSTMARK_WEBHOOK_AUTH", "no-colon"),
        ("POSTMARK_WEBHOOK_AUTH", "user:"),
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", "not base64!"),
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
        ("SENDGRID_WEBHOOK_PUBLIC_KEY", RSA_PUBLIC_DER),
        ("MAILGUN_SIGNING_KEY", "line\nbreak"),
    ],
)
def test_malformed_webhook_settings_name_the_variable(tmp_path: Path, name: str, value: str) -> None:
    """A malformed webhook secret stops start-up with a message naming the variable."""
    with pytest.raises(ConfigError, match=name):
        load_config({name: value}, str(tmp_path))


def test_a_malformed_key_stops_the_app_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """create_app exits with one line naming the variable."""
    from mailer import create_app

    monkeypatch.setenv("MAILER_INSTANCE", str(tmp_path))
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", "bm90IGEga2V5")
    with pytest.raises(SystemExit) as exit_info:
        create_app({"TESTING": True})
    message = str(exit_info.value)
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in message
    assert "\n" not in message
