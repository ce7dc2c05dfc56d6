"""create tenant_quotas

Revision ID: 034
Revises: 033
Create Date: 2026-05-28 10:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = "034"
down_revision = "033"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "tenant_quotas",
        sa.Column("tenant_id", sa.String(64), primary_key=True),
        sa.Column("max_patterns", sa.Integer, nullable=False, server_default="10000"),
    )


def downgrade():
    op.drop_table("tenant_quotas")
