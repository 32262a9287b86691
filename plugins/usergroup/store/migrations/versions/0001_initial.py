"""The initial store: products (with User Group), subscriptions, user group blocks, process trail.

Revision ID: 0001
Revises:
"""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None

USER_GROUP_PRODUCT_ID = UUID("6b3c3a1e-5d0f-4e43-9a2f-2f1e0a8b7c01")


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    ts = sa.DateTime(timezone=True)
    products = op.create_table(
        "products",
        sa.Column("product_id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("product_type", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        schema=schema,
    )
    op.create_table(
        "subscriptions",
        sa.Column("subscription_id", sa.Uuid, primary_key=True),
        sa.Column("product_id", sa.Uuid, sa.ForeignKey(products.c.product_id), nullable=False),
        sa.Column("customer_id", sa.Uuid, nullable=False, index=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("insync", sa.Boolean, nullable=False),
        sa.Column("start_date", ts),
        sa.Column("end_date", ts),
        sa.Column("note", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        schema=schema,
    )
    subscription_fk = f"{schema}.subscriptions.subscription_id" if schema else "subscriptions.subscription_id"
    op.create_table(
        "user_group_blocks",
        sa.Column("subscription_id", sa.Uuid, sa.ForeignKey(subscription_fk), primary_key=True),
        sa.Column("group_name", sa.String(255)),
        sa.Column("group_id", sa.BigInteger),
        sa.Column("customer_id", sa.Uuid, nullable=False),
        sa.Column("name_key", sa.String(1024)),
        sa.UniqueConstraint("customer_id", "name_key", name="uq_user_group_blocks_customer_name"),
        schema=schema,
    )
    op.create_table(
        "processes",
        sa.Column("process_id", sa.Uuid, primary_key=True),
        sa.Column("workflow_name", sa.String(255), nullable=False),
        sa.Column("workflow_target", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("last_step", sa.String(255)),
        sa.Column("failed_reason", sa.Text),
        sa.Column("traceback", sa.Text),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("created_by", sa.String(255)),
        sa.Column("input_state", sa.JSON, nullable=False),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("last_modified_at", ts, nullable=False),
        sa.UniqueConstraint("dag_id", "run_id", name="uq_processes_dag_run"),
        schema=schema,
    )
    process_fk = f"{schema}.processes.process_id" if schema else "processes.process_id"
    op.create_table(
        "process_steps",
        sa.Column("step_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("process_id", sa.Uuid, sa.ForeignKey(process_fk), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("try_number", sa.Integer, nullable=False),
        sa.Column("state", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("note", sa.Text),
        sa.Column("hostname", sa.String(255)),
        sa.Column("started_at", ts, nullable=False),
        sa.Column("completed_at", ts, nullable=False),
        sa.UniqueConstraint("process_id", "name", "try_number", name="uq_process_steps_try"),
        schema=schema,
    )
    op.create_table(
        "processes_subscriptions",
        sa.Column("process_id", sa.Uuid, sa.ForeignKey(process_fk), primary_key=True),
        sa.Column("subscription_id", sa.Uuid, sa.ForeignKey(subscription_fk), primary_key=True),
        sa.Column("workflow_target", sa.String(20), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        schema=schema,
    )
    op.bulk_insert(
        products,
        [
            {
                "product_id": USER_GROUP_PRODUCT_ID,
                "name": "User Group",
                "description": "User Group",
                "product_type": "UserGroup",
                "tag": "GROUP",
                "status": "active",
                "created_at": datetime.now(UTC),
            }
        ],
    )
