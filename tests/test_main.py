"""The home page, the health check and the worker heartbeat through real Redis and Celery."""

from __future__ import annotations

from datetime import date

from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.main.tasks import HEARTBEAT_KEY, heartbeat
from mailer.models import Meeting
from mailer.redis_client import get_redis
from tests.conftest import wait_until


def test_home_lists_meetings(app: Flask, client: FlaskClient) -> None:
    """A meeting in the database shows on the home page with its date and city."""
    with app.app_context():
        db.session.add(
            Meeting(slug="smemm-29", title="29th SME Ministerial Meeting", kind="ministerial", number=29,
                    start_date=date(2023, 8, 21), end_date=date(2023, 8, 21), city="Seattle",
                    economy="United States", status="held")
        )
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "29th SME Ministerial Meeting" in page
    assert "21 August 2023, Seattle" in page


def test_health_reports_worker_heartbeat(app: Flask, client: FlaskClient, celery_worker: object) -> None:
    """A heartbeat queued through Redis is run by a real worker and then shows in /healthz."""
    with app.app_context():
        get_redis().delete(HEARTBEAT_KEY)
    assert client.get("/healthz").get_json()["worker_heartbeat_age_seconds"] is None
    with app.app_context():
        heartbeat.delay()
    age = wait_until(lambda: client.get("/healthz").get_json()["worker_heartbeat_age_seconds"] is not None)
    assert age
    assert 0 <= client.get("/healthz").get_json()["worker_heartbeat_age_seconds"] < 30
