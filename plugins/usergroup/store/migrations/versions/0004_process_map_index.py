"""A process per subscription in a run that runs a workflow for many (the nightly validation): processes are
no longer unique per (dag_id, run_id) (their id, derived from the run and the subscription, is); each records
the mapped task instance that opened it (`map_index`, -1 for a run that is one process).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    schema = context.config.attributes["db_schema"]
    with op.batch_alter_table("processes", schema=schema) as batch:
        batch.add_column(sa.Column("map_index", sa.Integer, nullable=False, server_default="-1"))
        batch.drop_constraint("uq_processes_dag_run", type_="unique")
        batch.create_index("ix_processes_dag_run", ["dag_id", "run_id"])
