"""Digests that run themselves: the cadence, feeds in, meeting change history, meeting reminders.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 15:40:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

FED_TABLES = ("meetings", "news_items")


def upgrade():
    op.create_table(
        "digest_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule", sa.String(length=80), nullable=False),
        sa.Column("anchor", sa.Date(), nullable=False),
        sa.Column("review_minutes", sa.Integer(), nullable=False),
        sa.Column("min_items", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("review_sent_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_by", sa.String(length=254), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(length=300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_schedules")),
    )
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("meeting_kind", sa.String(length=24), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=254), nullable=True),
        sa.Column("etag", sa.String(length=255), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("next_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('news', 'meetings')", name=op.f("ck_feeds_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeds")),
    )
    op.create_index(op.f("ix_feeds_next_fetch_at"), "feeds", ["next_fetch_at"], unique=False)
    op.create_table(
        "feed_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("guid", sa.Text(), nullable=False),
        sa.Column("section", sa.String(length=16), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["feed_id"], ["feeds.id"], name=op.f("fk_feed_entries_feed_id_feeds"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_entries")),
        sa.UniqueConstraint("feed_id", "key", name="uq_feed_entries_feed_key"),
    )  # fmt: skip
    op.create_table(
        "meeting_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["meeting_id"], ["meetings.id"], name=op.f("fk_meeting_changes_meeting_id_meetings"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting_changes")),
    )  # fmt: skip
    op.create_index(op.f("ix_meeting_changes_meeting_id"), "meeting_changes", ["meeting_id"], unique=False)
    # Plain ADD COLUMN (no table copy on SQLite, where subscribers' consent trigger refers to the table).
    for table in FED_TABLES:
        op.add_column(table, sa.Column("source", sa.String(length=2000), nullable=True))
    op.add_column("news_items", sa.Column("link", sa.String(length=2000), nullable=True))
    op.add_column("subscribers", sa.Column("reminder_days", sa.Integer(), nullable=True))
    op.create_index("ix_subscribers_reminder_days", "subscribers", ["reminder_days"],
                    sqlite_where=sa.text("reminder_days IS NOT NULL"), postgresql_where=sa.text("reminder_days IS NOT NULL"))  # fmt: skip
    op.add_column("digests", sa.Column("kind", sa.String(length=16), server_default="digest", nullable=False))
    op.add_column("digests", sa.Column("reminder_key", sa.String(length=200), nullable=True))
    op.create_index("uq_digests_reminder_key", "digests", ["reminder_key"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        # SQLite cannot add a CHECK to an existing table without copying it; the models hold the rule there.
        op.create_check_constraint("reminder_days", "subscribers",
                                   "reminder_days IS NULL OR (reminder_days >= 1 AND reminder_days <= 30)")
        op.create_check_constraint("kind", "digests", "kind IN ('digest', 'reminder')")  # fmt: skip


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("kind", "digests", type_="check")
        op.drop_constraint("reminder_days", "subscribers", type_="check")
    op.drop_index("uq_digests_reminder_key", table_name="digests")
    op.drop_column("digests", "reminder_key")
    op.drop_column("digests", "kind")
    op.drop_index("ix_subscribers_reminder_days", table_name="subscribers")
    op.drop_column("subscribers", "reminder_days")
    op.drop_column("news_items", "link")
    for table in FED_TABLES:
        op.drop_column(table, "source")
    op.drop_index(op.f("ix_meeting_changes_meeting_id"), table_name="meeting_changes")
    op.drop_table("meeting_changes")
    op.drop_table("feed_entries")
    op.drop_index(op.f("ix_feeds_next_fetch_at"), table_name="feeds")
    op.drop_table("feeds")
    op.drop_table("digest_schedules")
