"""Bounces and complaints: bounce_events, when an address was suppressed, deliveries found by Message-ID,
consent events "complaint" and "unsuppress".

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 13:40:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OLD_EVENTS = "event IN ('subscribe', 'confirm', 'preferences', 'unsubscribe', 'resubscribe', 'suppress', 'import')"
NEW_EVENTS = (
    "event IN ('subscribe', 'confirm', 'preferences', 'unsubscribe', 'resubscribe', 'suppress', 'import', "
    "'complaint', 'unsuppress')"
)
REFUSED = "'consent_events is append-only'"
SUBSCRIBER_EXISTS = "WHEN EXISTS (SELECT 1 FROM subscribers WHERE id = OLD.subscriber_id) "


def upgrade():
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("event_key", sa.String(length=255), nullable=True),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('hard', 'soft', 'complaint', 'unsubscribe')", name=op.f("ck_bounce_events_kind")),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_bounce_events_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_bounce_events_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["digest_id"], ["digests.id"], name=op.f("fk_bounce_events_digest_id_digests"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_bounce_events_event_key")),
    )  # fmt: skip
    with op.batch_alter_table("bounce_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bounce_events_subscriber_id"), ["subscriber_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bounce_events_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bounce_events_digest_id"), ["digest_id"], unique=False)
        batch_op.create_index("ix_bounce_events_subscriber_received", ["subscriber_id", "received_at"], unique=False)
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_subscribers_status_suppressed", "subscribers", ["status", "suppressed_at", "id"])
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_message_id", ["message_id"], unique=False)
    _consent_events_check(NEW_EVENTS)


def downgrade():
    _consent_events_check(OLD_EVENTS, downgrade_events=True)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_message_id")
    # Not a batch: SQLite would copy subscribers, which consent_events' trigger refers to.
    op.drop_index("ix_subscribers_status_suppressed", table_name="subscribers")
    op.drop_column("subscribers", "suppressed_at")
    op.drop_table("bounce_events")


def _consent_events_check(condition: str, downgrade_events: bool = False) -> None:
    """Allow the consent events ``condition`` names (SQLite copies the table: its triggers are made again).

    Going down, the new events are written as the nearest old ones (complaint → suppress, unsuppress →
    resubscribe), the one change ever made to the log, so the old rule can hold.
    """
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_delete")
    if downgrade_events:
        rewrite = (
            "UPDATE consent_events SET event = CASE event WHEN 'complaint' THEN 'suppress' ELSE 'resubscribe' END "
            "WHERE event IN ('complaint', 'unsuppress')"
        )
        if sqlite:
            op.execute(rewrite)
        else:
            op.execute("ALTER TABLE consent_events DISABLE TRIGGER consent_events_append_only")
            op.execute(rewrite)
            op.execute("ALTER TABLE consent_events ENABLE TRIGGER consent_events_append_only")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_consent_events_event"), type_="check")
        batch_op.create_check_constraint("event", condition)
    if not sqlite:
        return
    op.execute(
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        f"BEGIN SELECT RAISE(ABORT, {REFUSED}); END"
    )
    op.execute(
        f"CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events {SUBSCRIBER_EXISTS}"
        f"BEGIN SELECT RAISE(ABORT, {REFUSED}); END"
    )
