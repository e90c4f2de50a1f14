"""Erasure on request: erased addresses (keyed hashes), deliveries outliving their subscriber, consent
events deletable only together with their subscriber.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:45:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CONSENT_FK = "fk_consent_events_subscriber_id_subscribers"
REFUSED = "'consent_events is append-only'"

# PostgreSQL: the function behind the trigger 0001 created (BEFORE UPDATE OR DELETE, for each row).
# A DELETE passes only when the event's subscriber no longer exists: the cascade of its erasure.
PG_REFUSE_ALL = f"BEGIN RAISE EXCEPTION {REFUSED}; END"
PG_REFUSE_BUT_ERASURE = (
    "BEGIN IF TG_OP = 'DELETE' AND NOT EXISTS (SELECT 1 FROM subscribers WHERE id = OLD.subscriber_id) "
    f"THEN RETURN OLD; END IF; RAISE EXCEPTION {REFUSED}; END"
)
SUBSCRIBER_EXISTS = "WHEN EXISTS (SELECT 1 FROM subscribers WHERE id = OLD.subscriber_id) "


def upgrade():
    op.create_table(
        "erased_addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erased_addresses")),
        sa.UniqueConstraint("hash", name=op.f("uq_erased_addresses_hash")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("subscriber_id", existing_type=sa.Integer(), nullable=True)
    _consent_events(ondelete="CASCADE", pg_body=PG_REFUSE_BUT_ERASURE, sqlite_delete_when=SUBSCRIBER_EXISTS)


def downgrade():
    # A delivery whose subscriber was erased has nobody to point at once the column is NOT NULL again.
    op.execute("DELETE FROM deliveries WHERE subscriber_id IS NULL")
    _consent_events(ondelete=None, pg_body=PG_REFUSE_ALL, sqlite_delete_when="")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("subscriber_id", existing_type=sa.Integer(), nullable=False)
    op.drop_table("erased_addresses")


def _consent_events(ondelete: str | None, pg_body: str, sqlite_delete_when: str) -> None:
    """Point consent_events at subscribers with ``ondelete`` and put the append-only rules in place."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # The batch below copies the table into a new one: its triggers would go with the old one.
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS consent_events_no_delete")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_constraint(CONSENT_FK, type_="foreignkey")
        batch_op.create_foreign_key(CONSENT_FK, "subscribers", ["subscriber_id"], ["id"], ondelete=ondelete)
    if not sqlite:
        op.execute(
            "CREATE OR REPLACE FUNCTION consent_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ {pg_body} $$"
        )
        return
    op.execute(
        "CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events "
        f"BEGIN SELECT RAISE(ABORT, {REFUSED}); END"
    )
    op.execute(
        f"CREATE TRIGGER consent_events_no_delete BEFORE DELETE ON consent_events {sqlite_delete_when}"
        f"BEGIN SELECT RAISE(ABORT, {REFUSED}); END"
    )
