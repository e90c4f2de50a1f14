"""Every response carries the security headers: each route, GET and a forged POST, errors, static files."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from flask import Flask, url_for
from flask.testing import FlaskClient
from werkzeug.routing import AnyConverter, Rule
from werkzeug.test import TestResponse

from mailer import create_app
from mailer.content.importer import import_text
from mailer.extensions import db, limiter
from mailer.models import ALL_TOPICS, Subscriber
from mailer.security import MAIL_FRAME_POLICY, SITE_POLICY
from mailer.subscriptions.links import confirm_url, personal_links
from tests.conftest import AuthActions, CaughtMail, csrf_token
from tests.data import meeting

# The headers depend on the URL and the configuration, not on the database.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

#: A value for every path argument of the URL map (a new argument name fails the walk until added here).
SAMPLES = {
    "digest_id": 1,
    "subscriber_id": 1,
    "user_id": 1,
    "token": "not-a-real-token",
    "provider": "postmark",
    "chart": "audience",
    "number": 1,
    "key": "no-such-message",
    "slug": meeting()["slug"],
    "section": "meetings",
    "action": "pause",
    "change": "activate",
    "filename": "site.css",
    "feed_id": 1,
}
#: Content for the signed-in walk: enough for the digest preview to exist, and a page for the sample slug.
CONTENT = {"meetings": [meeting()]}
MAIL_FRAMES = {"/staff/digests/next/html"}


@pytest.fixture(params=["https://news.example.org", "http://localhost:5000"], ids=["https", "http"])
def production_app(
    request: pytest.FixtureRequest,
    database_url: str,
    redis_url: str,
    smtp_server: tuple[CaughtMail, Controller],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    """The app in production mode (no caught-mail pages), with an https or a plain-http BASE_URL."""
    run = uuid.uuid4().hex[:12]
    for name, value in {
        "MAILER_ENV": "production",
        "MAILER_INSTANCE": str(tmp_path / "instance"),
        "SECRET_KEY": "k" * 40,
        "BASE_URL": request.param,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_server[1].port}",
        "MAIL_FROM": "News <news@example.org>",
        "ORG_POSTAL_ADDRESS": "1 Example Street, Singapore",
    }.items():
        monkeypatch.setenv(name, value)
    app = create_app({"TESTING": True, "REDIS_PREFIX": f"mailer-test-{run}"})
    limiter._key_prefix = f"mailer-test-{run}"
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _directives(policy: str) -> dict[str, str]:
    """A CSP header as {directive: sources}."""
    return {name: value.strip() for name, _, value in (part.strip().partition(" ") for part in policy.split(";"))}


def _check(response: TestResponse, where: str, *, hsts: bool) -> None:
    """Assert that ``response`` (to ``where``, "METHOD url") carries every header, with the right values."""
    headers = response.headers
    framed = urlsplit(where.split(" ", 1)[1]).path in MAIL_FRAMES and response.status_code == 200
    assert headers.get("Content-Security-Policy") == (MAIL_FRAME_POLICY if framed else SITE_POLICY), where
    assert headers.get("X-Frame-Options") == ("SAMEORIGIN" if framed else "DENY"), where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    # Every /subscriptions/ and /staff/review/ URL holds a link token in its path; archive links hold theirs in ?t=.
    token = any(part in where for part in ("/subscriptions/", "?t=", "/password-reset/", "/staff/review/"))
    assert headers.get("Referrer-Policy") == ("no-referrer" if token else "strict-origin-when-cross-origin"), where
    assert headers.get("Strict-Transport-Security") == ("max-age=31536000; includeSubDomains" if hsts else None), where
    # form-action 'self' holds only while every form of ours posts to our own origin.
    for action in re.findall(r'<form[^>]*\saction="([^"]*)"', response.get_data(as_text=True)):
        assert action.startswith("/"), f"{where}: form posts to {action}"
        assert not action.startswith("//"), f"{where}: form posts to {action}"


def _urls(app: Flask) -> list[str]:
    """One URL per rule of the app's map, path arguments filled with samples, plus an archive token link."""
    with app.test_request_context():
        urls = {url_for(rule.endpoint, **{name: _sample(rule, name) for name in rule.arguments})
                for rule in app.url_map.iter_rules()}  # fmt: skip
    return sorted(urls) + ["/archive/1?t=not-a-real-token"]


def _sample(rule: Rule, name: str) -> object:
    """The sample for a path argument; for an ``any(...)`` argument, the first value it allows."""
    converter = rule._converters[name]
    if isinstance(converter, AnyConverter):
        return re.findall(r"[\w-]+", converter.regex)[0]
    return SAMPLES[name]


def _walk(app: Flask, client: FlaskClient, *, hsts: bool) -> set[int]:
    """GET and POST (no CSRF token, no fields) every URL of the app; check each answer; return the statuses."""
    statuses = set()
    for url in _urls(app):
        for method in ("GET", "POST"):
            response = client.open(url, method=method)
            _check(response, f"{method} {url}", hsts=hsts)
            statuses.add(response.status_code)
    too_large = b"x" * (2 * 1024 * 1024)
    for method, url, body, kind in (("GET", "/no/such/page", None, None), ("GET", "/api/v1/nothing", None, None),
                                    ("POST", "/subscribe", too_large, "application/x-www-form-urlencoded"),
                                    ("POST", "/api/v1/subscriptions", too_large, "application/json")):  # fmt: skip
        response = client.open(url, method=method, data=body, content_type=kind)
        _check(response, f"{method} {url}", hsts=hsts)
        statuses.add(response.status_code)
    return statuses


def _sign_in(app: Flask, client: FlaskClient) -> None:
    """Add some content (so the digest preview exists), and sign an editor in."""
    with app.app_context():
        import_text(json.dumps(CONTENT))
    AuthActions(app, client).login()


def _rate_limited(client: FlaskClient) -> TestResponse:
    """Guess a password until the sign-in limit answers 429."""
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    for _ in range(11):
        response = client.post("/staff/login", data={"csrf_token": token, "email": "x@example.org", "password": "no"})
    return response


@sqlite_only
def test_every_route_carries_the_headers_in_the_embedded_default(app: Flask) -> None:
    """Anonymous and signed in, every route, errors included; no HSTS on the default http BASE_URL."""
    assert any(rule.rule.startswith("/dev/") for rule in app.url_map.iter_rules())
    statuses = _walk(app, app.test_client(), hsts=False)
    staff = app.test_client()
    _sign_in(app, staff)
    statuses |= _walk(app, staff, hsts=False)
    limited = _rate_limited(app.test_client())
    _check(limited, "POST /staff/login", hsts=False)
    assert {200, 302, 400, 403, 404, 405, 413, 429} <= statuses | {limited.status_code}


@sqlite_only
def test_every_route_carries_the_headers_in_production(production_app: Flask) -> None:
    """The same in production mode; HSTS exactly when BASE_URL is https."""
    app = production_app
    https = app.config["BASE_URL"].startswith("https://")
    statuses = _walk(app, app.test_client(), hsts=https)
    staff = app.test_client()
    _sign_in(app, staff)
    statuses |= _walk(app, staff, hsts=https)
    _check(_rate_limited(app.test_client()), "POST /staff/login", hsts=https)
    assert {200, 302, 400, 404, 405, 413} <= statuses


@sqlite_only
def test_https_base_url_turns_hsts_on_in_the_embedded_default(app: Flask) -> None:
    """HSTS follows BASE_URL, not the mode."""
    keep = ("TESTING", "SQLALCHEMY_DATABASE_URI", "REDIS_URL", "REDIS_PREFIX", "SMTP_URL")
    secure = create_app({**{name: app.config[name] for name in keep}, "BASE_URL": "https://news.example.org"})
    assert secure.test_client().get("/").headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in app.test_client().get("/").headers


@sqlite_only
def test_pages_with_a_real_token_send_no_referrer(app: Flask, client: FlaskClient) -> None:
    """The confirm, manage and unsubscribe pages of a real subscriber: shown (200), and no referrer leaves them."""
    with app.app_context():
        row = Subscriber(email="ana@example.org", topics=ALL_TOPICS, status="pending", confirm_nonce="n" * 16)
        db.session.add(row)
        db.session.commit()
        urls = [confirm_url(row.id, row.confirm_nonce), *personal_links(row.id, row.link_version).values()]
    for url in urls:
        response = client.get(urlsplit(url).path)
        assert response.status_code == 200, url
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/subscribe").headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_the_policies_forbid_inline_script_and_framing() -> None:
    """No inline script anywhere; our pages are never framed; the mail frame only by our own pages."""
    site, frame = _directives(SITE_POLICY), _directives(MAIL_FRAME_POLICY)
    for policy in (site, frame):
        assert "'unsafe-inline'" not in policy.get("script-src", policy["default-src"])
        assert policy["base-uri"] == "'none'"
    assert site["default-src"] == "'self'"
    assert site["object-src"] == "'none'"
    assert site["form-action"] == "'self'"
    assert site["frame-ancestors"] == "'none'"
    assert "style-src" not in site
    assert frame["default-src"] == "'none'"
    assert frame["frame-ancestors"] == "'self'"


@sqlite_only
def test_the_digest_preview_frame_is_framable_by_the_console_only(app: Flask) -> None:
    """The console page is never framed; the HTML it frames may be, by our own origin."""
    staff = app.test_client()
    _sign_in(app, staff)
    page = staff.get("/staff/digests/next")
    assert 'src="/staff/digests/next/html"' in page.get_data(as_text=True)
    assert _directives(page.headers["Content-Security-Policy"])["frame-ancestors"] == "'none'"
    frame = staff.get("/staff/digests/next/html")
    assert frame.status_code == 200
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert _directives(frame.headers["Content-Security-Policy"])["frame-ancestors"] == "'self'"


def test_a_wrong_method_on_a_redirecting_url_still_gets_headers(client: FlaskClient) -> None:
    """POST to a path the router would redirect (a doubled slash) answers without a 500, with the headers."""
    response = client.post("/dev/mail//html", data={})
    assert response.status_code < 500
    assert response.headers["X-Content-Type-Options"] == "nosniff"
