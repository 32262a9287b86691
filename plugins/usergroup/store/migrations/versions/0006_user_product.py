"""The User product: fixed inputs (a product's fixed values), the products `User internal` and `User external`
(fixed input `affiliation`) and the user block, whose group refers to a User Group's block.

Revision ID: 0006
Revises: 0005
"""

from datetime import UTC, datetime
from uuid import UUID

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"

USER_PRODUCTS = {"internal": UUID("3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b11"),
                 "external": UUID("3f1b7c52-8e4d-4a6b-9c21-5d7e0f3a9b12")}


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    ts, now = sa.DateTime(timezone=True), datetime.now(UTC)
    prefix = f"{schema}." if schema else ""
    fixed_inputs = op.create_table(
        "fixed_inputs",
        sa.Column("fixed_input_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("product_id", sa.Uuid, sa.ForeignKey(f"{prefix}products.product_id"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("created_at", ts, nullable=False),
        sa.UniqueConstraint("product_id", "name", name="uq_fixed_inputs_product_name"),
        schema=schema,
    )
    op.create_table(
        "user_blocks",
        sa.Column("subscription_id", sa.Uuid, sa.ForeignKey(f"{prefix}subscriptions.subscription_id"),
                  primary_key=True),
        sa.Column("group_subscription_id", sa.Uuid, sa.ForeignKey(f"{prefix}user_group_blocks.subscription_id"),
                  index=True),
        sa.Column("username", sa.String(255)),
        sa.Column("age", sa.Integer),
        sa.Column("user_id", sa.BigInteger),
        sa.Column("name_key", sa.String(1024)),
        sa.UniqueConstraint("group_subscription_id", "name_key", name="uq_user_blocks_group_name"),
        schema=schema,
    )
    products = sa.table("products", sa.column("product_id", sa.Uuid), sa.column("created_at", ts),
                        *(sa.column(c) for c in ("name", "description", "product_type", "tag", "status")),
                        schema=schema)
    op.bulk_insert(products, [
        {"product_id": pid, "name": f"User {a}", "description": f"User {a}", "product_type": "User", "tag": "USER",
         "status": "active", "created_at": now} for a, pid in USER_PRODUCTS.items()])
    op.bulk_insert(fixed_inputs, [{"product_id": pid, "name": "affiliation", "value": a, "created_at": now}
                                  for a, pid in USER_PRODUCTS.items()])
