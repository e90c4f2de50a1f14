"""Digest numbers for real digests only (test sends take none); content that can be archived.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 13:45:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

CONTENT_TABLES = ("meetings", "projects", "news_items")


def upgrade():
    # Plain ADD COLUMN and CREATE INDEX: no table copy on SQLite.
    op.add_column("digests", sa.Column("number", sa.Integer(), nullable=True))
    digests = sa.table("digests", sa.column("id", sa.Integer), sa.column("number", sa.Integer),
                       sa.column("is_test", sa.Boolean))  # fmt: skip
    conn = op.get_bind()
    real = conn.execute(sa.select(digests.c.id).where(digests.c.is_test.is_(False)).order_by(digests.c.id)).scalars()
    for number, digest_id in enumerate(list(real), start=1):
        conn.execute(sa.update(digests).where(digests.c.id == digest_id).values(number=number))
    op.create_index("uq_digests_number", "digests", ["number"], unique=True)
    for table in CONTENT_TABLES:
        op.add_column(table, sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    for table in CONTENT_TABLES:
        op.drop_column(table, "archived_at")
    op.drop_index("uq_digests_number", table_name="digests")
    op.drop_column("digests", "number")
