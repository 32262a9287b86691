"""Upgrade the store's schema with Alembic; the version table lives inside the schema."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from usergroup.store.engine import mapped_schema

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection, db_schema: str | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes.update(connection=connection, db_schema=db_schema)
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Create the schema if needed and upgrade it to `revision`; return the revision now current."""
    db_schema = mapped_schema(engine)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # a table a migration rebuilds (batch mode) must not take the rows that refer to it along
            _pragma(conn, "foreign_keys = OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    # One migrator at a time: CREATE SCHEMA IF NOT EXISTS alone races.
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('usergroup.migrate'))"))
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{db_schema}"'))
                command.upgrade(_config(conn, db_schema), revision)
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the migration left rows referring to nothing: {broken[:5]}")
                return current_revision(conn, db_schema)
        finally:
            if sqlite:
                _pragma(conn, "foreign_keys = ON")


def _pragma(conn, pragma: str) -> None:
    """A PRAGMA outside any transaction (SQLite ignores foreign_keys inside one)."""
    conn.connection.dbapi_connection.execute(f"PRAGMA {pragma}")


def current_revision(connection, db_schema: str | None) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": db_schema})
    return context.get_current_revision()
