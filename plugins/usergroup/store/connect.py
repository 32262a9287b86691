"""Engines for the store: PostgreSQL with a real schema, SQLite with the schema mapped away."""

import re

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from usergroup.store.tables import SCHEMA_TOKEN

DEFAULT_DB_SCHEMA = "usergroup"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_db_schema(db_schema: str) -> str:
    if not isinstance(db_schema, str) or not _IDENTIFIER.match(db_schema):
        raise ValueError(
            f"db_schema {db_schema!r} is not a valid schema name: use lower-case letters, digits and '_' "
            "(at most 63, not starting with a digit)"
        )
    return db_schema


def create_store_engine(url: str | URL, db_schema: str = DEFAULT_DB_SCHEMA, lock_timeout: float = 60) -> Engine:
    """An engine whose statements address `db_schema`, waiting at most `lock_timeout` seconds for a lock (a
    step holds the process row, and on SQLite the whole store, for its transaction).

    SQLite has no schemas: the tables live in the main database of the file, which is the store's own
    file (never Airflow's), so the schema is mapped to none. Write transactions there start with
    BEGIN IMMEDIATE, so concurrent tasks queue on the lock instead of failing a lock upgrade.
    """
    url = make_url(url)
    check_db_schema(db_schema)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": lock_timeout})
        event.listen(engine, "connect", lambda conn, _: _sqlite_on_connect(conn, lock_timeout))
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        translate = {SCHEMA_TOKEN: None}
    else:
        # A task is a fresh process: its connections are new, no pre-ping needed. No column is an HSTORE: psycopg2
        # need not look its type up on every new engine's first connection.
        engine = create_engine(url, **({"use_native_hstore": False} if url.get_driver_name() == "psycopg2" else {}))
        if lock_timeout < 60:  # PostgreSQL waits for a row lock forever unless told
            event.listen(engine, "connect", lambda conn, _: _pg_lock_timeout(conn, lock_timeout))
        translate = {SCHEMA_TOKEN: db_schema}
    return engine.execution_options(schema_translate_map=translate)


def _sqlite_on_connect(dbapi_connection, lock_timeout: float) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event emits BEGIN itself
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
    cursor.close()


def _pg_lock_timeout(dbapi_connection, lock_timeout: float) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
    cursor.close()
    dbapi_connection.commit()


def mapped_schema(engine: Engine) -> str | None:
    """The real schema the placeholder maps to on this engine (None on SQLite)."""
    return engine.get_execution_options()["schema_translate_map"][SCHEMA_TOKEN]
