"""The console's subscriber pages: search, history, unsubscribe on request, CSV download."""

from __future__ import annotations

import csv
import io

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.extensions import db
from mailer.models import AuditEntry, SubscriberStatus
from tests.conftest import AuthActions, csrf_token
from tests.subscribing import add_subscriber, events, subscriber


@pytest.fixture
def staff(app: Flask, auth: AuthActions) -> FlaskClient:
    """A signed-in editor and three subscribers."""
    add_subscriber(app, "ana@example.org", SubscriberStatus.CONFIRMED)
    add_subscriber(app, "anabel_x@example.net", SubscriberStatus.PENDING)
    add_subscriber(app, "ben@example.org", SubscriberStatus.UNSUBSCRIBED)
    return auth.login()


def _id(app: Flask, email: str) -> int:
    """The subscriber id of ``email``."""
    return subscriber(app, email).id


def test_pages_need_sign_in(client: FlaskClient) -> None:
    """Anonymous visitors are sent to sign in; the CSV is not served."""
    for path in ("/staff/subscribers/", "/staff/subscribers/1", "/staff/subscribers/export.csv"):
        assert client.get(path).status_code == 302


def test_search_finds_addresses_case_insensitively(staff: FlaskClient) -> None:
    """A part of the address finds it whatever the case; LIKE wildcards are taken literally."""
    page = staff.get("/staff/subscribers/?q=ANA").get_data(as_text=True)
    assert "ana@example.org" in page
    assert "anabel_x@example.net" in page
    assert "ben@" not in page
    underscore = staff.get("/staff/subscribers/?q=l_x").get_data(as_text=True)
    assert "anabel_x@example.net" in underscore
    assert "ana@example.org" not in underscore
    assert "No address contains" in staff.get("/staff/subscribers/?q=%25").get_data(as_text=True)
    assert staff.get("/staff/subscribers/?q=" + "a" * 5000).status_code == 200


def test_unsubscribe_on_request_is_recorded(app: Flask, staff: FlaskClient) -> None:
    """Staff unsubscribe an address: status changes, the consent log says staff, the audit log who."""
    sid = _id(app, "ana@example.org")
    assert "Unsubscribe on their request" in staff.get(f"/staff/subscribers/{sid}").get_data(as_text=True)
    token = csrf_token(staff.get(f"/staff/subscribers/{sid}").get_data(as_text=True))
    response = staff.post(f"/staff/subscribers/{sid}/unsubscribe", data={"csrf_token": token})
    assert response.status_code == 303
    assert subscriber(app, "ana@example.org").status == "unsubscribed"
    assert [(e.event, e.source) for e in events(app, "ana@example.org")][-1] == ("unsubscribe", "staff")
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "subscriber.unsubscribe")).scalar()
        assert (entry.actor, entry.target) == ("editor@example.org", "ana@example.org")
    page = staff.get(f"/staff/subscribers/{sid}").get_data(as_text=True)
    assert "unsubscribe" in page
    assert "Unsubscribe on their request" not in page


def test_forged_or_repeated_unsubscribe_changes_nothing(app: Flask, staff: FlaskClient) -> None:
    """Without the token: 400 and no change; for an address already out: nothing changes."""
    sid = _id(app, "ana@example.org")
    assert staff.post(f"/staff/subscribers/{sid}/unsubscribe").status_code == 400
    assert subscriber(app, "ana@example.org").status == "confirmed"
    ben = _id(app, "ben@example.org")
    token = csrf_token(staff.get("/staff/").get_data(as_text=True))
    staff.post(f"/staff/subscribers/{ben}/unsubscribe", data={"csrf_token": token})
    assert "was not subscribed" in staff.get(f"/staff/subscribers/{ben}").get_data(as_text=True)


def test_csv_download_lists_everyone(app: Flask, staff: FlaskClient) -> None:
    """The download is the export CSV with every subscriber, and the export is audited."""
    response = staff.get("/staff/subscribers/export.csv")
    assert response.headers["Content-Disposition"] == 'attachment; filename="subscribers.csv"'
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert sorted(r["email"] for r in rows) == ["ana@example.org", "anabel_x@example.net", "ben@example.org"]
    with app.app_context():
        assert db.session.execute(db.select(AuditEntry.actor).where(AuditEntry.action == "subscribers.export")).scalar()


def test_unknown_subscriber_is_404(staff: FlaskClient) -> None:
    """Ids that name nobody, however large, answer 404."""
    for path in ("/staff/subscribers/999", f"/staff/subscribers/{2**40}"):
        assert staff.get(path).status_code == 404


def test_control_characters_in_the_search_are_ignored(staff: FlaskClient) -> None:
    """A NUL in the search text is dropped, not sent to the database."""
    page = staff.get("/staff/subscribers/?q=ana%00").get_data(as_text=True)
    assert "ana@example.org" in page


def test_staff_void_every_link_on_request(app: Flask, staff: FlaskClient) -> None:
    """The owner asks staff: the link version moves on, audited under the staff member; a forged post: nothing."""
    sid = _id(app, "ana@example.org")
    assert staff.post(f"/staff/subscribers/{sid}/revoke-links", data={"csrf_token": "forged"}).status_code == 400
    assert subscriber(app, "ana@example.org").link_version == 1
    token = csrf_token(staff.get(f"/staff/subscribers/{sid}").get_data(as_text=True))
    response = staff.post(f"/staff/subscribers/{sid}/revoke-links", data={"csrf_token": token})
    assert response.status_code == 303
    assert subscriber(app, "ana@example.org").link_version == 2
    assert "is void" in staff.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "subscriber.revoke_links")).scalar()
    assert (entry.actor, entry.target) == ("editor@example.org", "ana@example.org")
