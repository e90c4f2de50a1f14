"""Erasure on request: the service, the consent log's rule for it, imports, the CLI, the console and old links."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from mailer.content.importer import import_text
from mailer.digests import service as digests
from mailer.extensions import db
from mailer.models import AuditEntry, ConsentEvent, Delivery, Digest, ErasedAddress, Subscriber, SubscriberStatus
from mailer.sending import engine
from mailer.subscriptions.erasure import NOT_SENT, address_hash, erase_subscriber, is_erased
from mailer.subscriptions.links import preferences_url, unsubscribe_url
from mailer.subscriptions.service import revoke_links
from tests.conftest import AuthActions, csrf_token
from tests.data import news_item
from tests.subscribing import add_subscriber, settle, subscribe, subscriber

ANA = "Ana.Lee@example.org"


def _with_history(app: Flask, email: str) -> int:
    """A confirmed subscriber with two consent events and an audit entry naming the address; its id."""
    subscriber_id = add_subscriber(app, email, SubscriberStatus.CONFIRMED)
    with app.app_context():
        for event in ("subscribe", "confirm"):
            db.session.add(ConsentEvent(subscriber_id=subscriber_id, event=event, source="form", ip="192.0.2.1"))
        db.session.commit()
        revoke_links(db.session.get(Subscriber, subscriber_id), "editor@example.org", None)
    return subscriber_id


def _erase(app: Flask, email: str, actor: str = "editor@example.org") -> str | None:
    """Erase the subscriber of ``email`` through the service; the marker it returns."""
    with app.app_context():
        found = db.session.execute(db.select(Subscriber).where(Subscriber.email == email)).scalar_one()
        return erase_subscriber(found, actor, "198.51.100.7")


def _audit(app: Flask) -> list[tuple[str, str, str | None, str]]:
    """Every audit entry as (actor, action, target, detail as JSON)."""
    with app.app_context():
        rows = db.session.execute(db.select(AuditEntry).order_by(AuditEntry.id)).scalars()
        return [(e.actor, e.action, e.target, json.dumps(e.detail)) for e in rows]


def _count(app: Flask, model: type[db.Model]) -> int:
    """How many rows ``model``'s table holds."""
    with app.app_context():
        return db.session.execute(db.select(db.func.count()).select_from(model)).scalar_one()


def test_erasure_removes_the_row_its_consent_log_and_the_address_in_the_audit_log(app: Flask) -> None:
    """Row and consent events go, the audit log names a marker (never the address), the hash stays."""
    ana = _with_history(app, ANA)
    ben = _with_history(app, "ben@example.org")
    marker = _erase(app, ANA)
    with app.app_context():
        assert marker == "erased:" + address_hash(ANA)[:12]
        assert db.session.get(Subscriber, ana) is None
        assert db.session.get(Subscriber, ben) is not None
        owners = db.session.execute(db.select(ConsentEvent.subscriber_id)).scalars().all()
        assert sorted(owners) == [ben, ben]
        assert db.session.execute(db.select(ErasedAddress.hash)).scalars().all() == [address_hash(ANA)]
        assert is_erased("ana.lee@EXAMPLE.org")
        assert not is_erased("ben@example.org")
    audit = _audit(app)
    assert not [entry for entry in audit if ANA.lower() in repr(entry).lower()]
    assert ("editor@example.org", "subscriber.revoke_links", marker, "null") in audit
    assert ("editor@example.org", "subscriber.revoke_links", "ben@example.org", "null") in audit
    assert audit[-1][:3] == ("editor@example.org", "subscriber.erase", marker)


def test_erasing_twice_changes_nothing_more(app: Flask) -> None:
    """A second erasure of the same (stale) subscriber finds nobody: nothing changes, one hash is kept."""
    _with_history(app, ANA)
    with app.app_context():
        stale = db.session.execute(db.select(Subscriber).where(Subscriber.email == ANA)).scalar_one()
        db.session.expunge(stale)
    assert _erase(app, ANA) is not None
    audit = _audit(app)
    with app.app_context():
        assert erase_subscriber(stale, "editor@example.org", None) is None
    assert _audit(app) == audit
    assert _count(app, ErasedAddress) == 1


def test_an_address_erased_subscribes_again_and_is_erased_again(app: Flask, client: FlaskClient) -> None:
    """The owner may subscribe again on the public form (new consent); erasing again keeps one hash."""
    _with_history(app, ANA)
    _erase(app, ANA)
    assert subscribe(client, ANA).status_code in (200, 302, 303)
    settle(app)
    assert subscriber(app, ANA).status == "pending"
    assert _erase(app, ANA) is not None
    assert subscriber(app, ANA) is None
    assert _count(app, ErasedAddress) == 1


def test_consent_log_still_refuses_changes_to_a_living_subscribers_events(app: Flask) -> None:
    """After an erasure, the events of everyone still subscribed can be neither changed nor deleted."""
    _with_history(app, ANA)
    ben = _with_history(app, "ben@example.org")
    _erase(app, ANA)
    statements = [f"UPDATE consent_events SET source = 'forged' WHERE subscriber_id = {ben}",
                  f"DELETE FROM consent_events WHERE subscriber_id = {ben}", "DELETE FROM consent_events"]  # fmt: skip
    with app.app_context():
        for statement in statements:
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                db.session.execute(sa.text(statement))
            db.session.rollback()
        assert db.session.execute(db.select(ConsentEvent.source)).scalars().all() == ["form", "form"]


def test_deleting_the_subscriber_row_is_what_lets_its_events_go(app: Flask) -> None:
    """In plain SQL too: once the subscriber row is deleted, its events may be deleted."""
    ana = _with_history(app, ANA)
    with app.app_context():
        db.session.execute(sa.text(f"DELETE FROM subscribers WHERE id = {ana}"))
        db.session.execute(sa.text(f"DELETE FROM consent_events WHERE subscriber_id = {ana}"))
        db.session.commit()
    assert _count(app, ConsentEvent) == 0


def test_old_links_answer_404_after_erasure(app: Flask, client: FlaskClient) -> None:
    """Preferences and unsubscribe links from the subscriber's emails name nobody any more."""
    ana = _with_history(app, ANA)
    with app.app_context():
        links = [urlsplit(url(ana, 2)).path for url in (preferences_url, unsubscribe_url)]
    assert [client.get(link).status_code for link in links] == [200, 200]
    _erase(app, ANA)
    assert [client.get(link).status_code for link in links] == [404, 404]
    assert client.post(links[1], data={"List-Unsubscribe": "One-Click"}).status_code == 404


def _digest_to(app: Flask, *emails: str) -> int:
    """A digest released to confirmed subscribers with ``emails``, its send task not queued; its id."""
    for email in emails:
        add_subscriber(app, email, SubscriberStatus.CONFIRMED)
    with app.app_context():
        import_text(json.dumps({"news": [news_item()]}))
        digest = digests.create_digest()
        digests.release_due()
        app.extensions["celery"].control.purge()
        return digest.id


def test_a_sent_digest_keeps_its_counts_without_the_address(app: Flask, mailbox: object) -> None:
    """Deliveries stay, counted as before, with neither the subscriber nor the address nor the reply."""
    digest_id = _digest_to(app, ANA, "ben@example.org")
    with app.app_context():
        assert engine.send_batch(digest_id, app.extensions["mailer.variants"]).done
        before = digests.delivery_counts(digest_id)
        db.session.execute(db.update(Delivery).values(last_smtp_reply=f"250 ok <{ANA}>"))
        db.session.commit()
    marker = _erase(app, ANA)
    with app.app_context():
        assert digests.delivery_counts(digest_id) == before == {"sent": 2}
        query = db.select(Delivery.email, Delivery.subscriber_id, Delivery.last_smtp_reply)
        rows = {row.email: tuple(row) for row in db.session.execute(query)}
    assert rows[marker] == (marker, None, None)
    assert rows["ben@example.org"][2] == f"250 ok <{ANA}>"  # nobody else's delivery changes


def test_a_delivery_not_sent_yet_is_skipped_and_the_digest_finishes(app: Flask, mailbox: object) -> None:
    """Erased while the digest goes out: the delivery is skipped, everyone else gets it, the digest ends."""
    digest_id = _digest_to(app, ANA, "ben@example.org")
    _erase(app, ANA)
    with app.app_context():
        assert engine.send_batch(digest_id, app.extensions["mailer.variants"]).done
        assert digests.delivery_counts(digest_id) == {"sent": 1, "skipped": 1}
        assert db.session.get(Digest, digest_id).status == "sent"
        skipped = db.session.execute(db.select(Delivery).where(Delivery.status == "skipped")).scalar_one()
        assert skipped.last_smtp_reply == NOT_SENT
    assert [to for _, (to,) in mailbox.envelopes] == ["ben@example.org"]


def _import(runner: FlaskCliRunner, tmp_path: Path, *emails: str) -> object:
    """Run ``subscribers import`` on a file of pending rows for ``emails``."""
    path = tmp_path / "list.csv"
    path.write_text("email\n" + "".join(f"{email}\n" for email in emails))
    return runner.invoke(args=["subscribers", "import", str(path)])


def test_import_skips_erased_addresses(app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """An erased address (in any case) is skipped and counted apart from the addresses already known."""
    _with_history(app, ANA)
    add_subscriber(app, "known@example.org", SubscriberStatus.CONFIRMED)
    _erase(app, ANA)
    result = _import(runner, tmp_path, ANA.upper(), "known@example.org", "new@example.org")
    assert result.exit_code == 0, result.output
    assert "imported 0 confirmed, 1 pending, 0 unsubscribed or suppressed; " in result.output
    assert "1 already known and left unchanged; 1 erased, skipped" in result.output
    assert subscriber(app, ANA) is None
    assert subscriber(app, "new@example.org").status == "pending"
    assert json.loads(_audit(app)[-1][3])["erased_skipped"] == 1


def test_cli_erases_with_yes_or_a_typed_yes(app: Flask, runner: FlaskCliRunner) -> None:
    """--yes erases at once; without it the command asks, and erases on "y"; the actor is "cli"."""
    _with_history(app, ANA)
    _with_history(app, "ben@example.org")
    result = runner.invoke(args=["subscribers", "erase", "ana.lee@example.org", "--yes"])
    assert result.exit_code == 0, result.output
    assert "erased:" in result.output
    assert subscriber(app, ANA) is None
    assert _audit(app)[-1][:2] == ("cli", "subscriber.erase")
    result = runner.invoke(args=["subscribers", "erase", "ben@example.org"], input="y\n")
    assert result.exit_code == 0, result.output
    assert "Erase ben@example.org" in result.output
    assert subscriber(app, "ben@example.org") is None


@pytest.mark.parametrize(
    ("args", "answer", "code", "message"),
    [
        (["nobody@example.org", "--yes"], None, 1, "no subscriber has the address nobody@example.org"),
        ([ANA], "n\n", 1, "nothing erased"),
        ([ANA], None, 2, "add --yes"),
    ],
)
def test_cli_refuses_and_erases_nothing(
    app: Flask, runner: FlaskCliRunner, args: list[str], answer: str | None, code: int, message: str
) -> None:
    """An unknown address, a "no", or nobody to answer (no stdin, CI): an error and nothing erased."""
    _with_history(app, ANA)
    result = runner.invoke(args=["subscribers", "erase", *args], input=answer)
    assert result.exit_code == code
    assert message in result.output
    assert subscriber(app, ANA) is not None
    assert _count(app, ErasedAddress) == 0


def test_cli_says_when_an_address_was_erased_already(app: Flask, runner: FlaskCliRunner) -> None:
    """Erasing an erased address: exit 1, saying so."""
    _with_history(app, ANA)
    _erase(app, ANA)
    result = runner.invoke(args=["subscribers", "erase", ANA, "--yes"])
    assert result.exit_code == 1
    assert "erased already" in result.output


@pytest.mark.parametrize("role", ["editor", "admin"])
def test_staff_erase_on_request_after_typing_the_address(
    app: Flask, client: FlaskClient, auth: AuthActions, role: str
) -> None:
    """Typed again (any case), the address is erased; back on the search page with a message."""
    ana = _with_history(app, ANA)
    auth.login("staff@example.org", role)
    page = client.get(f"/staff/subscribers/{ana}").get_data(as_text=True)
    assert "Erase all data" in page
    data = {"csrf_token": csrf_token(page), "confirm_email": " ana.lee@example.ORG "}
    response = client.post(f"/staff/subscribers/{ana}/erase", data=data)
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/staff/subscribers/"
    assert "All data of the subscriber is erased" in client.get("/staff/subscribers/").get_data(as_text=True)
    assert subscriber(app, ANA) is None
    assert _audit(app)[-1][:2] == ("staff@example.org", "subscriber.erase")
    assert client.get(f"/staff/subscribers/{ana}").status_code == 404


@pytest.mark.parametrize(
    ("confirm", "with_token", "status"),
    [("ana.lee@example.org", False, 400), ("", True, 400), ("ana@example.org", True, 400)],
)
def test_staff_erase_refused_without_token_or_confirmation(
    app: Flask, auth: AuthActions, confirm: str, with_token: bool, status: int
) -> None:
    """No CSRF token, no typed address or another one: 4xx and nothing changes."""
    ana = _with_history(app, ANA)
    client = auth.login()
    data = {"confirm_email": confirm}
    if with_token:
        data["csrf_token"] = csrf_token(client.get(f"/staff/subscribers/{ana}").get_data(as_text=True))
    response = client.post(f"/staff/subscribers/{ana}/erase", data=data)
    assert response.status_code == status
    assert subscriber(app, ANA) is not None
    assert _count(app, ErasedAddress) == 0
    if with_token:
        assert "nothing was erased" in response.get_data(as_text=True)


def test_anonymous_visitors_cannot_erase(app: Flask, client: FlaskClient) -> None:
    """Without signing in (a genuine CSRF token even) the form is sent to sign in, and nothing is erased."""
    ana = _with_history(app, ANA)
    token = csrf_token(client.get("/staff/login").get_data(as_text=True))
    response = client.post(f"/staff/subscribers/{ana}/erase", data={"csrf_token": token, "confirm_email": ANA})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/staff/login"
    assert subscriber(app, ANA) is not None
