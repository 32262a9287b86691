"""The answer a suspended process was given, kept until its input step takes it (Airflow may retry the task it was
given to: the retry takes it from here instead of asking again).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    with op.batch_alter_table("processes", schema=context.config.attributes["db_schema"]) as batch:
        batch.add_column(sa.Column("answer", sa.JSON))
