"""Upgrade the store's schema with Alembic; the version table lives inside the schema. Tables kept beside the store
(the fake OSS/BSS's) are migrated the same way, from migrations and a version table of their own."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

from usergroup.store.connect import mapped_schema

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def _config(connection, db_schema: str | None, migrations: Path, version_table: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes.update(connection=connection, db_schema=db_schema, version_table=version_table)
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, migrations: Path = MIGRATIONS,
            version_table: str = VERSION_TABLE) -> str:
    """Create the schema if needed and upgrade it to `revision`; return the revision now current. `migrations` and
    `version_table` name another history kept in the same schema (the store's by default)."""
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
                command.upgrade(_config(conn, db_schema, migrations, version_table), revision)
                if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the migration left rows referring to nothing: {broken[:5]}")
                return current_revision(conn, db_schema, version_table)
        finally:
            if sqlite:
                _pragma(conn, "foreign_keys = ON")


def _pragma(conn, pragma: str) -> None:
    """A PRAGMA outside any transaction (SQLite ignores foreign_keys inside one)."""
    conn.connection.dbapi_connection.execute(f"PRAGMA {pragma}")


def current_revision(connection, db_schema: str | None, version_table: str = VERSION_TABLE) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": db_schema,
                                                           "version_table": version_table})
    return context.get_current_revision()
