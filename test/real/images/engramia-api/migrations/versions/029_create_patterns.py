"""create patterns

Revision ID: 029
Revises:
Create Date: 2026-01-12 09:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = "029"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "patterns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_patterns_tenant_id", "patterns", ["tenant_id"])


def downgrade():
    op.drop_index("ix_patterns_tenant_id", table_name="patterns")
    op.drop_table("patterns")
