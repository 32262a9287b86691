"""Step rows keyed on the Airflow task (task_id, map_index), not the step's name: a step may run twice.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    with op.batch_alter_table("process_steps", schema=schema) as batch:
        batch.add_column(sa.Column("task_id", sa.String(250)))
        batch.add_column(sa.Column("map_index", sa.Integer, nullable=False, server_default="-1"))
    steps = sa.table("process_steps", sa.column("name"), sa.column("task_id"), schema=schema)
    op.execute(steps.update().values(task_id=steps.c.name))  # so far every task was named for its step
    with op.batch_alter_table("process_steps", schema=schema) as batch:
        batch.alter_column("task_id", existing_type=sa.String(250), nullable=False)
        batch.drop_constraint("uq_process_steps_try", type_="unique")
        batch.create_unique_constraint("uq_process_steps_task_try", ["process_id", "task_id", "map_index",
                                                                     "try_number"])
