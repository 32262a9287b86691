"""The outbox of subscription events: what each completed process announces to other pipelines (Airflow Assets).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    ts, prefix = sa.DateTime(timezone=True), f"{schema}." if schema else ""
    op.create_table(
        "subscription_events",
        sa.Column("process_id", sa.Uuid, sa.ForeignKey(f"{prefix}processes.process_id"), primary_key=True),
        sa.Column("subscription_id", sa.Uuid, nullable=False),
        sa.Column("product_type", sa.String(255), nullable=False),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("workflow_target", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("completed_at", ts, nullable=False),
        sa.Column("announced_at", ts),
        schema=schema,
    )
