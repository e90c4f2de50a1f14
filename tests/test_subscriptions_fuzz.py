"""Arbitrary values sent to every public endpoint never produce a 500."""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.extensions import db
from mailer.models import Subscriber, SubscriberStatus
from mailer.subscriptions.links import confirm_url, preferences_url, unsubscribe_url

TOKEN_ROUTES = ("confirm", "manage", "unsubscribe", "resubscribe")
FIXED_PATHS = (
    "/subscribe", "/subscribe/widget", "/subscribe/check-inbox", "/api/v1/subscriptions",
    "/", "/healthz", "/staff/login", "/staff/", "/archive/", "/archive/feed.atom", "/dev/mail/",
)  # fmt: skip
OTHER_PATHS = (
    "/archive/{}", "/archive/1?t={}", "/meetings/{}.ics", "/meetings/{}", "/projects/{}", "/news/{}",
    "/dev/mail/{}", "/dev/mail/{}/html", "/webhooks/{}",
)  # fmt: skip
FIELD_NAMES = ("email", "name", "topics", "reminder_days", "website", "csrf_token", "List-Unsubscribe")

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELD_NAMES) | text, inner, max_size=5),
    max_leaves=12,
)
form_values = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | text,
    text | st.lists(st.sampled_from(("meetings", "projects", "news", "1", "3", "7", "14")) | text, max_size=4),
    max_size=6,
)


def _real_tokens(app: Flask) -> list[str]:
    """Genuine tokens of one subscriber, so fuzzed bodies also reach the pages behind valid links."""
    with app.test_request_context():
        row = db.session.execute(db.select(Subscriber).where(Subscriber.email == "fuzz@example.org")).scalar()
        if row is None:
            row = Subscriber(email="fuzz@example.org", status=SubscriberStatus.CONFIRMED.value, confirm_nonce="f" * 32)
            db.session.add(row)
            db.session.commit()
        urls = (confirm_url(row.id, "f" * 32), preferences_url(row.id, 1), unsubscribe_url(row.id, 1))
        return [url.rsplit("/", 1)[1] for url in urls]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_input_makes_a_500(app: Flask, client: FlaskClient, data: st.DataObject) -> None:
    """Any method, path token, form, multipart, JSON or raw body: the answer is never a server error."""
    app.config.update(
        WTF_CSRF_ENABLED=False, RATELIMIT_SUBSCRIBE_IP="100000 per hour", RATELIMIT_CONFIRM_ADDRESS="100000 per hour"
    )
    token = data.draw(st.sampled_from(_real_tokens(app)) | text, label="token")
    path = data.draw(
        st.sampled_from(FIXED_PATHS)
        | st.sampled_from(TOKEN_ROUTES).map(lambda route: f"/subscriptions/{route}/{quote(token, safe='')}")
        | st.sampled_from(OTHER_PATHS).map(lambda pattern: pattern.format(quote(token, safe=""))),
        label="path",
    )
    method = data.draw(st.sampled_from(["GET", "POST", "POST", "POST", "HEAD", "OPTIONS"]), label="method")
    body = data.draw(
        st.one_of(
            form_values.map(lambda v: {"data": v}),
            form_values.map(lambda v: {"data": v, "content_type": "multipart/form-data"}),
            json_values.map(lambda v: {"json": v}),
            st.binary(max_size=2000).map(lambda b: {"data": b, "content_type": "application/json"}),
        ),
        label="body",
    )
    response = client.open(path, method=method, **body)
    assert response.status_code < 500, (method, path, body)
