"""Calendar out: each meeting's iCalendar SEQUENCE.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 15:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (no table copy on SQLite); existing meetings start at sequence 0.
    op.add_column("meetings", sa.Column("sequence", sa.Integer(), server_default="0", nullable=False))


def downgrade():
    # Plain DROP COLUMN, as 0006: no batch copy of the meetings table.
    op.drop_column("meetings", "sequence")
