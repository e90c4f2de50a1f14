"""The home page, the health check and the worker heartbeat through real Redis and Celery."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from mailer import create_app
from mailer.content.importer import import_text
from mailer.extensions import db
from mailer.main import cache as main_cache
from mailer.main.tasks import HEARTBEAT, heartbeat
from mailer.models import Meeting, utcnow
from mailer.redis_client import get_redis, redis_key
from tests.conftest import wait_until
from tests.data import meeting


def test_home_lists_meetings(app: Flask, client: FlaskClient) -> None:
    """A meeting in the database shows on the home page with its date and city."""
    with app.app_context():
        db.session.add(
            Meeting(
                slug="smemm-29",
                title="29th SME Ministerial Meeting",
                kind="ministerial",
                number=29,
                start_date=date(2023, 8, 21),
                end_date=date(2023, 8, 21),
                city="Seattle",
                economy="United States",
                status="held",
            )
        )
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "29th SME Ministerial Meeting" in page
    assert "21 August 2023, Seattle" in page


def test_health_reports_worker_heartbeat(app: Flask, client: FlaskClient, celery_worker: object) -> None:
    """A heartbeat queued through Redis is run by a real worker and then shows in /healthz."""
    with app.app_context():
        get_redis().delete(redis_key(HEARTBEAT))
    assert client.get("/healthz").get_json()["worker_heartbeat_age_seconds"] is None
    with app.app_context():
        heartbeat.delay()
    age = wait_until(lambda: client.get("/healthz").get_json()["worker_heartbeat_age_seconds"] is not None)
    assert age
    assert 0 <= client.get("/healthz").get_json()["worker_heartbeat_age_seconds"] < 30


def test_unknown_page_is_a_friendly_404(client: FlaskClient) -> None:
    """A missing page answers 404 with a page that leads home; under /api/ it answers JSON."""
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404
    assert api.get_json() == {"error": "not found", "status": 404}


def test_client_address_behind_trusted_proxies(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> None:
    """With PROXY_FIX_HOPS=1 the client address is the last hop in X-Forwarded-For; with 0 it is not."""
    monkeypatch.setenv("MAILER_INSTANCE", str(tmp_path))
    seen = {}
    for hops in ("0", "1"):
        monkeypatch.setenv("PROXY_FIX_HOPS", hops)
        app = create_app({"TESTING": True, "REDIS_URL": redis_url})

        @app.get("/_whoami")
        def whoami() -> str:
            return request.remote_addr or ""

        headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        seen[hops] = app.test_client().get("/_whoami", headers=headers).get_data(as_text=True)
    assert seen == {"0": "127.0.0.1", "1": "203.0.113.9"}


def test_home_shows_an_edit_on_the_next_request(app: Flask, client: FlaskClient) -> None:
    """The cached home page is rendered again as soon as an item is added or edited in this process."""
    assert "No meetings yet." in client.get("/").get_data(as_text=True)
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting()]}))
    assert "58th SMEWG Meeting" in client.get("/").get_data(as_text=True)
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting(title="58th SMEWG Meeting, renamed")]}))
    assert "58th SMEWG Meeting, renamed" in client.get("/").get_data(as_text=True)


def test_home_shows_another_process_edit_within_the_version_ttl(app: Flask, client: FlaskClient) -> None:
    """An edit committed outside this process's sessions (another web process) shows once VERSION_TTL passed."""
    with app.app_context():
        import_text(json.dumps({"meetings": [meeting()]}))
    assert "58th SMEWG Meeting" in client.get("/").get_data(as_text=True)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(db.update(Meeting).values(title="Renamed elsewhere", updated_at=utcnow()))
    app.extensions["public_pages"].checked_at -= main_cache.VERSION_TTL  # a second later
    assert "Renamed elsewhere" in client.get("/").get_data(as_text=True)


def test_home_answers_304_to_its_etag_and_keeps_flash_messages_personal(client: FlaskClient) -> None:
    """A client holding the page's ETag gets 304; a pending flash message shows once, on a fresh page."""
    first = client.get("/")
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["ETag"]
    assert client.get("/", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Your preferences are saved.")]
    assert "Your preferences are saved." in client.get("/").get_data(as_text=True)
    again = client.get("/")
    assert "Your preferences are saved." not in again.get_data(as_text=True)
    assert again.data == first.data
