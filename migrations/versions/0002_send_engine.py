"""Send engine: claims and leases on deliveries, retry times, preparing and paused digests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:05:00
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

OLD_DIGEST = "status IN ('scheduled', 'queued', 'sending', 'sent', 'failed', 'cancelled')"
NEW_DIGEST = "status IN ('scheduled', 'preparing', 'queued', 'sending', 'paused', 'sent', 'failed', 'cancelled')"
OLD_DELIVERY = "status IN ('queued', 'sending', 'sent', 'failed', 'bounced', 'skipped')"
NEW_DELIVERY = "status IN ('queued', 'sending', 'sent', 'failed', 'bounced', 'skipped', 'cancelled')"


def upgrade():
    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sender_errors', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_constraint(batch_op.f('ck_digests_status'), type_='check')
        batch_op.create_check_constraint('status', NEW_DIGEST)

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f('ck_deliveries_status'), type_='check')
        batch_op.create_check_constraint('status', NEW_DELIVERY)
        batch_op.create_index('ix_deliveries_claimable', ['digest_id', 'id'], unique=False,
                              sqlite_where=sa.text("status = 'queued'"), postgresql_where=sa.text("status = 'queued'"))
        batch_op.create_index('ix_deliveries_leases', ['claimed_at'], unique=False,
                              sqlite_where=sa.text("status = 'sending'"), postgresql_where=sa.text("status = 'sending'"))


def downgrade():
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'cancelled'")
    op.execute("UPDATE digests SET status = 'sending' WHERE status = 'paused'")
    op.execute("UPDATE digests SET status = 'scheduled', scheduled_at = created_at WHERE status = 'preparing'")
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_leases', sqlite_where=sa.text("status = 'sending'"),
                            postgresql_where=sa.text("status = 'sending'"))
        batch_op.drop_index('ix_deliveries_claimable', sqlite_where=sa.text("status = 'queued'"),
                            postgresql_where=sa.text("status = 'queued'"))
        batch_op.drop_constraint(batch_op.f('ck_deliveries_status'), type_='check')
        batch_op.create_check_constraint('status', OLD_DELIVERY)
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')

    with op.batch_alter_table('digests', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_digests_status'), type_='check')
        batch_op.create_check_constraint('status', OLD_DIGEST)
        batch_op.drop_column('sender_errors')
        batch_op.drop_column('paused_reason')
