"""Migrations up and down on SQLite and PostgreSQL, and the constraints they put in the schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade

from mailer import create_app
from mailer.extensions import db
from mailer.models import BounceEvent, ConsentEvent, Delivery, Digest, ErasedAddress, Meeting, Subscriber, utcnow
from tests.conftest import _admin, _with_database

TABLES = {
    "bounce_events",
    "subscribers",
    "consent_events",
    "meetings",
    "projects",
    "news_items",
    "digests",
    "deliveries",
    "staff_users",
    "audit_log",
    "erased_addresses",
    "digest_schedules",
    "feeds",
    "feed_entries",
    "meeting_changes",
}
#: Tables revision 0008 adds.
SINCE_0008 = {"digest_schedules", "feeds", "feed_entries", "meeting_changes"}


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_app(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    """The app on an empty database with no tables at all."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        postgres_url = request.getfixturevalue("postgres_url")
        name = f"mailer_m_{uuid.uuid4().hex[:12]}"
        with _admin(postgres_url) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = _with_database(postgres_url, name)
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    yield app
    with app.app_context():
        db.engine.dispose()
    if request.param == "postgresql":
        with _admin(postgres_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _tables() -> set[str]:
    """Tables present in the current database, without Alembic's own."""
    return set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade(empty_app: Flask) -> None:
    """Every table appears on upgrade, all go on downgrade to base, and upgrade works again."""
    with empty_app.app_context():
        upgrade()
        assert _tables() == TABLES
        downgrade(revision="base")
        assert _tables() == set()
        upgrade()
        assert _tables() == TABLES


def test_erasure_revision_down_and_up_again(empty_app: Flask) -> None:
    """0003 down to 0002 drops the erased addresses and the deliveries left without a subscriber; up again."""
    with empty_app.app_context():
        upgrade()
        ana = Subscriber(email="ana@example.org")
        digest = Digest(subject="S", until=utcnow(), content={}, topics=7)
        db.session.add_all([ana, digest, ErasedAddress(hash="0" * 64)])
        db.session.flush()
        db.session.add(ConsentEvent(subscriber_id=ana.id, event="subscribe", source="form"))
        for subscriber_id in (ana.id, None):
            db.session.add(Delivery(digest_id=digest.id, subscriber_id=subscriber_id, email="x", topics=7))
        ana_id = ana.id
        db.session.commit()
        db.session.remove()
        downgrade(revision="0002")
        assert _tables() == TABLES - {"erased_addresses", "bounce_events"} - SINCE_0008
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT subscriber_id FROM deliveries")).scalars().all() == [ana_id]
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM consent_events"))
        upgrade()
        assert _tables() == TABLES


def test_bounce_revision_down_and_up_again(empty_app: Flask) -> None:
    """0004 down to 0003 drops the bounce events, keeps the consent log (a complaint reads as a suppression
    under the old rule) and keeps it append-only; up again."""
    with empty_app.app_context():
        upgrade()
        ana = Subscriber(email="ana@example.org")
        db.session.add(ana)
        db.session.flush()
        db.session.add(ConsentEvent(subscriber_id=ana.id, event="complaint", source="arf"))
        db.session.add(BounceEvent(kind="complaint", source="arf", subscriber_id=ana.id))
        db.session.commit()
        db.session.remove()
        downgrade(revision="0003")
        assert _tables() == TABLES - {"bounce_events"} - SINCE_0008
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT event FROM consent_events")).scalars().all() == ["suppress"]
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE consent_events SET source = 'x'"))
        upgrade()
        assert _tables() == TABLES
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM consent_events"))


def test_digest_numbers_are_given_to_real_digests_in_order(empty_app: Flask) -> None:
    """0005 numbers the digests already there, real ones only, oldest first; down and up again."""
    with empty_app.app_context():
        upgrade(revision="0004")
        with db.engine.begin() as conn:
            for is_test in (True, False, True, False):
                conn.execute(
                    sa.text(
                        "INSERT INTO digests (subject, status, is_test, until, content, topics, created_at, "
                        "sender_errors) VALUES ('S', 'sent', :t, :now, '{}', 7, :now, 0)"
                    ),
                    {"t": is_test, "now": utcnow()},
                )
        upgrade()
        with db.engine.begin() as conn:
            numbers = conn.execute(sa.text("SELECT number FROM digests ORDER BY id")).scalars().all()
        assert numbers == [None, 1, None, 2]
        downgrade(revision="0004")
        assert "number" not in {c["name"] for c in sa.inspect(db.engine).get_columns("digests")}
        upgrade()
        assert _tables() == TABLES


def test_staff_account_revision_down_and_up_again(empty_app: Flask) -> None:
    """0006 gives existing staff accounts session version 1; down to 0005 drops its columns; up again."""
    with empty_app.app_context():
        upgrade(revision="0005")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO staff_users (email, password_hash, role, active, created_at) "
                    "VALUES ('ana@example.org', 'x', 'admin', :yes, :now)"
                ),
                {"yes": True, "now": utcnow()},
            )
        upgrade()
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT session_version FROM staff_users")).scalar_one() == 1
        downgrade(revision="0005")
        assert "session_version" not in {c["name"] for c in sa.inspect(db.engine).get_columns("staff_users")}
        upgrade()
        columns = {c["name"] for c in sa.inspect(db.engine).get_columns("staff_users")}
        assert {"session_version", "password_reset_nonce_hash", "totp_secret", "totp_last_step"} <= columns
        assert _tables() == TABLES


def test_meeting_sequence_revision_down_and_up_again(empty_app: Flask) -> None:
    """0007 gives existing meetings sequence 0; down to 0006 drops the column and keeps the meetings; up again."""
    with empty_app.app_context():
        upgrade(revision="0006")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO meetings (slug, title, kind, status, start_date, end_date, created_at, updated_at, "
                    "demo) VALUES ('m', 'M', 'ministerial', 'held', :day, :day, :now, :now, :no)"
                ),
                {"day": date(2024, 3, 4), "now": utcnow(), "no": False},
            )
        upgrade()
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT sequence FROM meetings")).scalar_one() == 0
        downgrade(revision="0006")
        assert "sequence" not in {c["name"] for c in sa.inspect(db.engine).get_columns("meetings")}
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT slug FROM meetings")).scalar_one() == "m"
        upgrade()
        assert "sequence" in {c["name"] for c in sa.inspect(db.engine).get_columns("meetings")}
        assert _tables() == TABLES


def test_cadence_feeds_reminders_revision_down_and_up_again(empty_app: Flask) -> None:
    """0008 marks existing digests as digests; down to 0007 drops its tables and columns, keeps the rows; up again."""
    with empty_app.app_context():
        upgrade(revision="0007")
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO digests (subject, status, is_test, until, content, topics, created_at) "
                    "VALUES ('S', 'sent', :no, :now, '{}', 1, :now)"
                ),
                {"now": utcnow(), "no": False},
            )
        upgrade()
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT kind FROM digests")).scalar_one() == "digest"
        assert _tables() >= SINCE_0008
        downgrade(revision="0007")
        assert not SINCE_0008 & _tables()
        assert "kind" not in {c["name"] for c in sa.inspect(db.engine).get_columns("digests")}
        assert "reminder_days" not in {c["name"] for c in sa.inspect(db.engine).get_columns("subscribers")}
        with db.engine.begin() as conn:
            assert conn.execute(sa.text("SELECT subject FROM digests")).scalar_one() == "S"
        upgrade()
        assert _tables() == TABLES


def test_migrations_match_the_models(empty_app: Flask) -> None:
    """The migrated schema is what models.py declares (nothing left to autogenerate)."""
    with empty_app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_subscriber_address_is_unique_regardless_of_case(app: Flask) -> None:
    """Two subscribers whose addresses differ only in case cannot both exist."""
    with app.app_context():
        db.session.add(Subscriber(email="Ana@Example.org"))
        db.session.commit()
        db.session.add(Subscriber(email="ana@example.ORG"))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()


def test_consent_log_is_append_only(app: Flask) -> None:
    """The database itself refuses to change or delete a consent event."""
    with app.app_context():
        subscriber = Subscriber(email="ana@example.org")
        db.session.add(subscriber)
        db.session.flush()
        db.session.add(ConsentEvent(subscriber_id=subscriber.id, event="subscribe", source="form"))
        db.session.commit()
        for statement in ("UPDATE consent_events SET source = 'forged'", "DELETE FROM consent_events"):
            with pytest.raises(sa.exc.DatabaseError, match="append-only"):
                db.session.execute(sa.text(statement))
            db.session.rollback()
        assert db.session.execute(sa.select(ConsentEvent.source)).scalar_one() == "form"


@pytest.mark.parametrize(
    "values",
    [
        {"status": "paused"},
        {"topics": 8},
        {"topics": -1},
    ],
)
def test_subscriber_checks(app: Flask, values: dict[str, object]) -> None:
    """A status or topic mask outside the allowed values is refused by the schema."""
    with app.app_context():
        db.session.add(Subscriber(email="ana@example.org", **values))
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()


def test_meeting_cannot_end_before_it_starts(app: Flask) -> None:
    """The schema refuses a meeting whose end date is before its start date."""
    with app.app_context():
        db.session.add(
            Meeting(
                slug="m",
                title="M",
                kind="ministerial",
                status="held",
                start_date=date(2023, 8, 21),
                end_date=date(2023, 8, 20),
            )
        )
        with pytest.raises(sa.exc.IntegrityError):
            db.session.commit()
