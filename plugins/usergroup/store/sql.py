"""Dialect-aware INSERT ... ON CONFLICT for PostgreSQL and SQLite."""

from typing import Any

from sqlalchemy import Connection, Table


def _insert(conn: Connection, table: Table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row unless it conflicts; True if it was inserted."""
    return conn.execute(_insert(conn, table).values(**values).on_conflict_do_nothing()).rowcount == 1


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str]) -> None:
    stmt = _insert(conn, table).values(**values)
    changed = {k: stmt.excluded[k] for k in values if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed))
