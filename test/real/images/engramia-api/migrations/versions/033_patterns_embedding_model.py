"""add patterns.embedding_model

Revision ID: 033
Revises: 032
Create Date: 2026-04-21 16:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = "033"
down_revision = "032"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column(
        "patterns",
        sa.Column("embedding_model", sa.String(64), nullable=False, server_default="text-embedding-3-small"),
    )
    op.create_index("ix_patterns_embedding_model", "patterns", ["embedding_model"])


def downgrade():
    op.drop_index("ix_patterns_embedding_model", table_name="patterns")
    op.drop_column("patterns", "embedding_model")
