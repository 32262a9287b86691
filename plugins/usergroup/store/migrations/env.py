"""Alembic environment: run on the connection and schema that usergroup.store.migrate hands over."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    version_table_schema=context.config.attributes["db_schema"],
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
