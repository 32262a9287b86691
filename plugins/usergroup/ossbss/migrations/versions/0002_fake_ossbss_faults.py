"""The fake OSS/BSS's fault switches, one row, set while a stack runs (`usergroup ossbss faults`).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "fake_ossbss_faults",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("fail", sa.Boolean, nullable=False),
        sa.Column("delay", sa.Float, nullable=False),
        sa.Column("refuse", sa.String(255)),
        schema=context.config.attributes["db_schema"],
    )
