"""create pattern_feedback

Revision ID: 032
Revises: 031
Create Date: 2026-03-10 11:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = "032"
down_revision = "031"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "pattern_feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("pattern_id", sa.Integer, sa.ForeignKey("patterns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("rating", sa.SmallInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )


def downgrade():
    op.drop_table("pattern_feedback")
