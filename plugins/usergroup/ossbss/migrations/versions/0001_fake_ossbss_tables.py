"""The fake OSS/BSS's tables: its groups, its users, and the log of its changes. A fake of an earlier version
created them itself on first use: those it finds are kept as they are, only a missing one is created.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    present = set(sa.inspect(op.get_bind()).get_table_names(schema=schema))
    if "fake_ossbss_groups" not in present:
        op.create_table(
            "fake_ossbss_groups",
            sa.Column("group_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("subscription_id", sa.Uuid, nullable=False, unique=True),
            sa.Column("group_name", sa.String(255), nullable=False),
            sa.Column("calls", sa.Integer, nullable=False),
            schema=schema,
        )
    if "fake_ossbss_users" not in present:
        op.create_table(
            "fake_ossbss_users",
            sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("subscription_id", sa.Uuid, nullable=False, unique=True),
            sa.Column("group_id", sa.Integer, nullable=False),
            sa.Column("username", sa.String(255), nullable=False),
            sa.Column("age", sa.Integer),
            sa.Column("calls", sa.Integer, nullable=False),
            schema=schema,
        )
    if "fake_ossbss_changes" not in present:
        op.create_table(
            "fake_ossbss_changes",
            sa.Column("change_id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("subscription_id", sa.Uuid, nullable=False),
            sa.Column("action", sa.String(20), nullable=False),
            sa.Column("group_name", sa.String(255)),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            schema=schema,
        )
