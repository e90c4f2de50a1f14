"""POST /api/v1/subscriptions: the JSON endpoint for the organisation's own site."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from mailer.models import SubscriberStatus, Topic
from tests.conftest import CaughtMail
from tests.subscribing import add_subscriber, events, snapshot, subscriber

URL = "/api/v1/subscriptions"
SITE = "https://smewg.example.org"


def test_subscribe_through_the_api(app: Flask, client: FlaskClient, mailbox: CaughtMail, celery_worker: object) -> None:
    """A good request answers 202 and a confirmation email goes out; the consent source is "api"."""
    answer = client.post(URL, json={"email": "Api@Example.org", "name": "Api", "topics": ["projects", "news"]})
    assert answer.status_code == 202
    assert answer.get_json() == {
        "status": "accepted",
        "message": "Thank you. Check your inbox for an email to confirm your subscription.",
    }
    row = subscriber(app, "api@example.org")
    assert (row.email, row.name, row.status) == ("Api@example.org", "Api", "pending")
    assert Topic(row.topics).to_names() == ["projects", "news"]
    assert [(e.event, e.source) for e in events(app, "api@example.org")] == [("subscribe", "api")]
    (message,) = mailbox.wait_for(1)
    assert message["To"] == "Api@example.org"
    assert "confirm" in message["Subject"].lower()


def test_topics_default_to_all(app: Flask, client: FlaskClient) -> None:
    """Only the address is required; every topic is chosen when none is given."""
    assert client.post(URL, json={"email": "min@example.org"}).status_code == 202
    assert Topic(subscriber(app, "min@example.org").topics).to_names() == list(Topic.names())


def test_identical_answers(app: Flask, client: FlaskClient) -> None:
    """New, pending, confirmed, unsubscribed, suppressed and honeypot requests get byte-identical answers."""
    for status in SubscriberStatus:
        add_subscriber(app, f"{status.value}@example.org", status)
    bodies = [{"email": f"{s.value}@example.org"} for s in SubscriberStatus]
    bodies += [{"email": "new@example.org"}, {"email": "bot@example.org", "website": "x"}]
    answers = []
    for body in bodies:
        response = client.post(URL, json=body)
        answers.append((response.status_code, sorted(response.headers.items()), response.get_data()))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0][0] == 202
    assert subscriber(app, "bot@example.org") is None


BAD_REQUESTS: list[tuple[dict[str, object], int, str]] = [
    (
        {"data": "email=a@example.org", "content_type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
    ),
    ({"data": '{"email": "a@example.org"', "content_type": "application/json"}, 400, "malformed_json"),
    ({"data": b"\xff\xfe{}", "content_type": "application/json"}, 400, "malformed_json"),
    ({"data": "[" * 3000 + "]" * 3000, "content_type": "application/json"}, 400, "malformed_json"),
    ({"data": "", "content_type": "application/json"}, 400, "malformed_json"),
    (
        {"data": '{"email": "a@example.org", "pad": "' + "x" * 9000 + '"}', "content_type": "application/json"},
        413,
        "too_large",
    ),
    ({"json": ["a@example.org"]}, 400, "invalid"),
    ({"json": "a@example.org"}, 400, "invalid"),
    ({"data": "null", "content_type": "application/json"}, 400, "invalid"),
    ({"json": 42}, 400, "invalid"),
    ({"json": {}}, 400, "invalid"),
    ({"json": {"email": 5}}, 400, "invalid"),
    ({"json": {"email": ["a@example.org"]}}, 400, "invalid"),
    ({"json": {"email": {"a": 1}}}, 400, "invalid"),
    ({"json": {"email": "a@example.org\r\nBcc: b@example.org"}}, 400, "invalid"),
    ({"json": {"email": "a@example.org\n"}}, 400, "invalid"),
    ({"json": {"email": "x" * 250 + "@example.org"}}, 400, "invalid"),
    ({"json": {"email": "not an address"}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "topics": "news"}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "topics": [1]}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "topics": ["cats"]}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "topics": []}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "topics": None}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "name": 5}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "name": "N" * 201}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "name": "Ann\r\nX-Evil: 1"}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "admin": True}}, 400, "invalid"),
    ({"json": {"email": "a@example.org", "status": "confirmed"}}, 400, "invalid"),
]


def test_bad_requests_are_refused_and_change_nothing(app: Flask, client: FlaskClient) -> None:
    """Malformed, injected, oversized, wrong types, broken JSON, unknown fields: a 4xx JSON error, no change."""
    app.config["RATELIMIT_SUBSCRIBE_IP"] = "1000 per hour"
    before = snapshot(app)
    for kwargs, status, code in BAD_REQUESTS:
        response = client.post(URL, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == status, kwargs
        body = response.get_json()
        assert body["error"] == code, kwargs
        assert body["message"], kwargs
    assert snapshot(app) == before


def test_field_errors_name_each_field(app: Flask, client: FlaskClient) -> None:
    """Every bad field is reported at once, in plain words."""
    response = client.post(URL, json={"email": "nope", "topics": ["cats"], "name": 3, "extra": 1})
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert set(fields) == {"email", "topics", "name", "extra"}
    assert fields["extra"] == "Unknown field."
    assert "topics among" in fields["topics"]


def test_other_methods_are_not_allowed(app: Flask, client: FlaskClient) -> None:
    """GET, PUT and DELETE answer 405."""
    for method in ("get", "put", "delete"):
        assert getattr(client, method)(URL).status_code == 405


def test_cors_only_for_configured_origins(app: Flask, client: FlaskClient) -> None:
    """The configured site may call the API from a browser (preflight and POST, errors too); others may not."""
    app.config["CORS_ORIGINS"] = [SITE]
    preflight = client.options(
        URL,
        headers={
            "Origin": SITE,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "Content-Type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == SITE
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"].lower() == "content-type"
    ok = client.post(URL, json={"email": "cors@example.org"}, headers={"Origin": SITE})
    assert ok.status_code == 202
    assert ok.headers["Access-Control-Allow-Origin"] == SITE
    error = client.post(URL, json={"email": "bad"}, headers={"Origin": SITE})
    assert error.status_code == 400
    assert error.headers["Access-Control-Allow-Origin"] == SITE
    assert "Access-Control-Allow-Credentials" not in ok.headers
    other = client.post(URL, json={"email": "cors2@example.org"}, headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in other.headers
    other_preflight = client.options(
        URL, headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in other_preflight.headers


def test_no_cors_by_default(app: Flask, client: FlaskClient) -> None:
    """With CORS_ORIGINS empty no origin is allowed."""
    assert app.config["CORS_ORIGINS"] == []
    response = client.post(URL, json={"email": "d@example.org"}, headers={"Origin": SITE})
    assert response.status_code == 202
    assert "Access-Control-Allow-Origin" not in response.headers


def test_rate_limit_per_address_in_json(app: Flask, client: FlaskClient) -> None:
    """Over the per-address limit the API answers 429 JSON and nothing changes."""
    app.config["RATELIMIT_CONFIRM_ADDRESS"] = "1 per hour"
    assert client.post(URL, json={"email": "lim@example.org"}).status_code == 202
    before = snapshot(app)
    over = client.post(URL, json={"email": "LIM@example.org"})
    assert over.status_code == 429
    assert over.get_json()["error"] == "rate_limited"
    assert snapshot(app) == before
