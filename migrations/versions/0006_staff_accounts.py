"""Staff accounts a team can trust: session versions, password resets, TOTP.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 14:00:00
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN (no table copy on SQLite); existing accounts start at session version 1.
    op.add_column("staff_users", sa.Column("session_version", sa.Integer(), server_default="1", nullable=False))
    op.add_column("staff_users", sa.Column("password_reset_nonce_hash", sa.String(length=64), nullable=True))
    op.add_column("staff_users", sa.Column("totp_secret", sa.String(length=255), nullable=True))
    op.add_column("staff_users", sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.add_column("staff_users", sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    # Plain DROP COLUMN, as 0005: a batch copy of staff_users would lose its lower(email) index on SQLite.
    for column in ("password_changed_at", "totp_last_step", "totp_secret", "password_reset_nonce_hash",
                   "session_version"):  # fmt: skip
        op.drop_column("staff_users", column)
