"""Alembic environment of the fake OSS/BSS's tables: run on the connection, schema and version table that
usergroup.store.migrate hands over (the store's own way of migrating, with a version table of the fake's own)."""

from alembic import context

attributes = context.config.attributes
context.configure(
    connection=attributes["connection"],
    version_table=attributes["version_table"],
    version_table_schema=attributes["db_schema"],
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
