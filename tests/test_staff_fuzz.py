"""Arbitrary values sent to every console endpoint by a signed-in admin never produce a 500."""

from __future__ import annotations

from urllib.parse import quote

from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailer.staff.service import create_staff, find_staff

PASSWORD = "correct horse battery"
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
FIELDS = ("role", "password", "slug", "title", "kind", "number", "start_date", "end_date", "status", "link",
          "year", "published_on", "body", "email", "at", "demo", "confirm", "confirm_email",
          "frequency", "weekday", "every", "day", "ordinal", "review_hours", "min_meetings", "min_projects",
          "min_news", "run", "url", "meeting_kind")  # fmt: skip
PATHS = (
    "/staff/", "/staff/digests/next", "/staff/digests/next/html", "/staff/digests/test", "/staff/digests/send",
    "/staff/digests/schedule", "/staff/digests/{}", "/staff/digests/{}/progress", "/staff/digests/{}/cancel",
    "/staff/content/", "/staff/content/{}/new", "/staff/content/meetings/new", "/staff/content/news/new",
    "/staff/content/meetings/{}", "/staff/content/{}/{}", "/staff/content/meetings/{}/archive",
    "/staff/content/news/{}/delete", "/staff/content/{}/{}/unarchive", "/staff/digests/{}/cancel",
    "/staff/subscribers/", "/staff/subscribers/?q={}", "/staff/subscribers/?status={}", "/staff/subscribers/?topic={}",
    "/staff/subscribers/?source={}", "/staff/subscribers/?from={}", "/staff/subscribers/?before={}",
    "/staff/subscribers/import", "/staff/subscribers/import/commit", "/staff/subscribers/add",
    "/staff/subscribers/{}", "/staff/subscribers/{}/unsubscribe", "/staff/subscribers/export.csv",
    "/staff/subscribers/{}/revoke-links", "/staff/subscribers/{}/lift-suppression", "/staff/subscribers/{}/erase",
    "/staff/bounces", "/staff/bounces?kind={}", "/staff/bounces?before={}", "/staff/suppressions",
    "/staff/suppressions?before_id={}", "/staff/suppressions?before_id=5&before_at={}",
    "/staff/dashboard/{}.csv", "/staff/audit", "/staff/audit?actor={}", "/staff/audit?action={}",
    "/staff/audit?from={}", "/staff/audit?to={}", "/staff/audit?before={}",
    "/staff/account", "/staff/account/password", "/staff/account/totp", "/staff/account/totp/off", "/staff/login/code",
    "/staff/password-reset", "/staff/password-reset/{}",
    "/staff/team/", "/staff/team/{}/deactivate", "/staff/team/{}/activate", "/staff/logout",
    "/staff/schedule/", "/staff/schedule/off", "/staff/schedule/hold", "/staff/schedule/release",
    "/staff/schedule/{}", "/staff/review/{}", "/staff/feeds/", "/staff/feeds/{}/fetch", "/staff/feeds/{}/remove",
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_console_input_makes_a_500(app: Flask, client: FlaskClient, data: st.DataObject) -> None:
    """Any path part, method and form body from a signed-in admin: never a server error."""
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        if find_staff("editor@example.org") is None:
            create_staff("editor@example.org", PASSWORD, role="admin")
    client.post("/staff/login", data={"email": "editor@example.org", "password": PASSWORD})
    part = data.draw(st.sampled_from(["1", "meetings", "news", "projects", "0", "99999999999"]) | text, label="part")
    path = data.draw(st.sampled_from(PATHS), label="path").replace("{}", quote(part, safe="") or "x")
    method = data.draw(st.sampled_from(["GET", "POST", "POST", "HEAD"]), label="method")
    form = data.draw(st.dictionaries(st.sampled_from(FIELDS) | text, text, max_size=8), label="form")
    response = client.open(path, method=method, data=form)
    assert response.status_code < 500, (method, path, form)
