"""An OSS/BSS id is text: SCIM's `id` is an opaque string (the fake's numbers are kept as their digits).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0008"
down_revision = "0007"

COLUMNS = (("user_group_blocks", "group_id"), ("user_blocks", "user_id"))


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    for table, column in COLUMNS:
        with op.batch_alter_table(table, schema=schema) as batch:
            batch.alter_column(column, type_=sa.String(255), existing_type=sa.BigInteger,
                               postgresql_using=f"{column}::text")

