"""The console's bounce pages: recent bounces, suppressed addresses, lifting a suppression, and bounces on the
subscriber and digest pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from mailer.bounces.service import Notice, handle
from mailer.bounces.verp import DELIVERY, Tag
from mailer.extensions import db
from mailer.models import ALL_TOPICS, AuditEntry, BounceKind, Delivery, Digest, Subscriber, utcnow
from tests.conftest import AuthActions, csrf_token
from tests.subscribing import events, subscriber

READERS = ("ann@example.org", "bob@example.org", "cy@example.org")


@pytest.fixture
def digest_id(app: Flask) -> int:
    """A sent digest to three confirmed readers; then ann's hard bounce, bob's complaint and cy's soft bounce."""
    with app.app_context():
        digest = Digest(subject="March digest", status="sent", until=utcnow(), content={}, topics=ALL_TOPICS)
        readers = [Subscriber(email=e, topics=ALL_TOPICS, status="confirmed", confirmed_at=utcnow()) for e in READERS]
        db.session.add_all([digest, *readers])
        db.session.flush()
        deliveries = [
            Delivery(digest_id=digest.id, subscriber_id=r.id, email=r.email, topics=ALL_TOPICS, status="sent")
            for r in readers
        ]
        db.session.add_all(deliveries)
        db.session.commit()
        for delivery, kind, status, diagnostic in zip(
            deliveries,
            (BounceKind.HARD, BounceKind.COMPLAINT, BounceKind.SOFT),
            ("5.1.1", None, "4.2.2"),
            ("550 User unknown", None, "452 Mailbox full"),
            strict=True,
        ):
            notice = Notice(kind=kind, source="dsn", event_key=f"<{delivery.id}@mta>", tag=Tag(DELIVERY, delivery.id),
                            status=status, diagnostic=diagnostic)  # fmt: skip
            handle(notice)
        return digest.id


@pytest.fixture
def staff(digest_id: int, auth: AuthActions) -> FlaskClient:
    """A signed-in editor, after the digest's bounces came back."""
    return auth.login()


def _lift(staff: FlaskClient, app: Flask, email: str, **data: str) -> object:
    """POST the lift form for ``email`` with the page's token and ``data``."""
    sid = subscriber(app, email).id
    token = csrf_token(staff.get("/staff/suppressions").get_data(as_text=True))
    return staff.post(f"/staff/subscribers/{sid}/lift-suppression", data={"csrf_token": token, **data})


def test_pages_need_sign_in(app: Flask, client: FlaskClient, digest_id: int) -> None:
    """Anonymous visitors are sent to sign in; a lift POST changes nothing."""
    for path in ("/staff/bounces", "/staff/suppressions", "/staff/bounces?kind=hard"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/staff/login" in response.headers["Location"]
    sid = subscriber(app, "ann@example.org").id
    assert client.post(f"/staff/subscribers/{sid}/lift-suppression", data={"confirm": "y"}).status_code in (302, 400)
    assert subscriber(app, "ann@example.org").status == "suppressed"


def test_dashboard_links_to_the_new_pages(staff: FlaskClient) -> None:
    """The console's front page leads to the bounces and the suppression list."""
    page = staff.get("/staff/").get_data(as_text=True)
    assert 'href="/staff/bounces"' in page
    assert 'href="/staff/suppressions"' in page


def test_recent_bounces_newest_first_and_by_kind(staff: FlaskClient) -> None:
    """Every event with its address, kind, status and diagnostic, newest first; a kind filter keeps that kind."""
    page = staff.get("/staff/bounces").get_data(as_text=True)
    assert page.index("cy@example.org") < page.index("bob@example.org") < page.index("ann@example.org")
    assert "550 User unknown" in page and "5.1.1" in page and "452 Mailbox full" in page
    hard = staff.get("/staff/bounces?kind=hard").get_data(as_text=True)
    assert "ann@example.org" in hard
    assert "bob@example.org" not in hard and "cy@example.org" not in hard
    assert "Nothing of kind unsubscribe" in staff.get("/staff/bounces?kind=unsubscribe").get_data(as_text=True)


def test_recent_bounces_page_by_keyset(staff: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """One a page: the Older links walk every event once, newest first, and stop."""
    monkeypatch.setattr("mailer.staff.bounces.SHOWN", 1)
    seen, path = [], "/staff/bounces"
    while path:
        page = staff.get(path).get_data(as_text=True)
        seen += [a for a in READERS if a in page]
        older = re.search(r'href="([^"]*before=\d+[^"]*)">Older', page)
        path = older.group(1).replace("&amp;", "&") if older else ""
    assert seen == ["cy@example.org", "bob@example.org", "ann@example.org"]


def test_suppression_list_newest_first_with_reasons(staff: FlaskClient) -> None:
    """The hard-bounced and the complaining address, newest first, with reason and the lift form; not cy."""
    page = staff.get("/staff/suppressions").get_data(as_text=True)
    assert page.index("bob@example.org") < page.index("ann@example.org")
    assert "cy@example.org" not in page
    assert "5.1.1 550 User unknown" in page
    assert page.count("Lift on the owner's request") == 2
    assert 'name="confirm"' in page


def test_suppression_list_pages_through_unknown_times_last(
    app: Flask, staff: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Addresses suppressed at an unknown time (imported) come last; the Older links walk every one once."""
    with app.app_context():
        db.session.add_all(
            [Subscriber(email=f"old{n}@example.org", status="suppressed", suppressed_reason="imported") for n in (1, 2)]
        )
        ann = db.session.execute(db.select(Subscriber).where(Subscriber.email == "ann@example.org")).scalar_one()
        ann.suppressed_at = utcnow() - timedelta(days=3)
        db.session.commit()
    monkeypatch.setattr("mailer.staff.bounces.SHOWN", 1)
    seen, path = [], "/staff/suppressions"
    while path:
        page = staff.get(path).get_data(as_text=True)
        seen += re.findall(r">([a-z0-9]+@example\.org)</a>", page)
        older = re.search(r'href="([^"]*before_id=\d+[^"]*)">Older', page)
        path = older.group(1).replace("&amp;", "&") if older else ""
    assert seen == ["bob@example.org", "ann@example.org", "old2@example.org", "old1@example.org"]


def test_lift_on_request_is_recorded_once(app: Flask, staff: FlaskClient) -> None:
    """Lifted: confirmed again, consent event "unsuppress" from staff, audit under the editor with the IP; a replay
    says nothing changed and logs nothing more."""
    response = _lift(staff, app, "ann@example.org", confirm="y")
    assert response.status_code == 303
    assert "is no longer suppressed" in staff.get(response.headers["Location"]).get_data(as_text=True)
    ann = subscriber(app, "ann@example.org")
    assert (ann.status, ann.suppressed_at, ann.suppressed_reason) == ("confirmed", None, None)
    lifted = [e for e in events(app, "ann@example.org") if e.event == "unsuppress"]
    assert [(e.source, e.ip) for e in lifted] == [("staff", "127.0.0.1")]
    with app.app_context():
        entry = db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "subscriber.unsuppress")).scalar()
    assert (entry.actor, entry.target, entry.ip) == ("editor@example.org", "ann@example.org", "127.0.0.1")
    again = _lift(staff, app, "ann@example.org", confirm="y")
    assert "was not suppressed; nothing changed" in staff.get(again.headers["Location"]).get_data(as_text=True)
    assert len([e for e in events(app, "ann@example.org") if e.event == "unsuppress"]) == 1


def test_lift_without_token_or_confirmation_changes_nothing(app: Flask, staff: FlaskClient) -> None:
    """No CSRF token, a forged one, or the box not ticked: 400 and the address stays suppressed."""
    sid = subscriber(app, "ann@example.org").id
    before = len(events(app, "ann@example.org"))
    for data in ({"confirm": "y"}, {"confirm": "y", "csrf_token": "forged"}):
        assert staff.post(f"/staff/subscribers/{sid}/lift-suppression", data=data).status_code == 400
    unticked = _lift(staff, app, "ann@example.org")
    assert unticked.status_code == 400
    assert "Tick the box" in unticked.get_data(as_text=True)
    assert subscriber(app, "ann@example.org").status == "suppressed"
    assert len(events(app, "ann@example.org")) == before


def test_lift_of_an_address_not_suppressed_changes_nothing(app: Flask, staff: FlaskClient) -> None:
    """cy only soft-bounced once: a friendly message, and no consent event or audit entry."""
    before = len(events(app, "cy@example.org"))
    response = _lift(staff, app, "cy@example.org", confirm="y")
    assert response.status_code == 303
    assert "was not suppressed; nothing changed" in staff.get(response.headers["Location"]).get_data(as_text=True)
    assert subscriber(app, "cy@example.org").status == "confirmed"
    assert len(events(app, "cy@example.org")) == before
    with app.app_context():
        assert (
            db.session.execute(db.select(AuditEntry).where(AuditEntry.action == "subscriber.unsuppress")).first()
            is None
        )


def test_subscriber_page_shows_bounces_and_suppression(app: Flask, staff: FlaskClient) -> None:
    """A suppressed address's page: its bounce, why and when it was suppressed, the lift form; others: no form."""
    ann = staff.get(f"/staff/subscribers/{subscriber(app, 'ann@example.org').id}").get_data(as_text=True)
    assert "Suppressed on" in ann and "5.1.1 550 User unknown" in ann
    assert re.search(r"<td>hard</td><td>5\.1\.1</td><td>550 User unknown</td>", ann)
    assert "lift-suppression" in ann
    cy = staff.get(f"/staff/subscribers/{subscriber(app, 'cy@example.org').id}").get_data(as_text=True)
    assert re.search(r"<td>soft</td><td>4\.2\.2</td><td>452 Mailbox full</td>", cy)
    assert "lift-suppression" not in cy


def test_digest_page_counts_what_came_back(staff: FlaskClient, digest_id: int) -> None:
    """Next to the delivery counts: bounced and complained from bounce events, and the events themselves."""
    page = staff.get(f"/staff/digests/{digest_id}").get_data(as_text=True)
    assert "1 hard bounced · 1 soft bounced · 1 complained · 0 unsubscribed by mail" in page
    assert re.search(r"<td>ann@example\.org</td><td>hard</td><td>5\.1\.1</td><td>550 User unknown</td>", page)


#: Filters and cursors the bounce and suppression lists cannot read.
MALFORMED = [
    "kind=<script>alert(1)</script>", "kind=", "page=-1", f"page={10**20}", "before=-1", f"before={10**20}",
    "before=abc", "before_id=-1", f"before_id={10**20}", "before_id=3&before_at=yesterday",
    "before_id=3&before_at=0001-01-01T00:00:00%2B01:00", "before_id=3&before_at=2024-01-01T00:00:00",
    "before_id=3&before_at=9999-12-31T23:59:59%2B00:00",
]  # fmt: skip


def test_malformed_filters_are_ignored(staff: FlaskClient) -> None:
    """Unreadable kinds and cursors give the first page, never a 500, and are not echoed."""
    for query in MALFORMED:
        for path in ("/staff/bounces", "/staff/suppressions"):
            response = staff.get(f"{path}?{query}")
            assert response.status_code == 200, (path, query)
            assert "<script>" not in response.get_data(as_text=True), (path, query)
