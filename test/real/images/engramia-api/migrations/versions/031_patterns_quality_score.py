"""add patterns.quality_score

Revision ID: 031
Revises: 029
Create Date: 2026-02-03 14:05:00.000000

"""
import sqlalchemy as sa
from alembic import op

# 030 was dropped before release: the chain skips a number, as Engramia's does.
revision = "031"
down_revision = "029"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("patterns", sa.Column("quality_score", sa.Float, nullable=True))


def downgrade():
    op.drop_column("patterns", "quality_score")
