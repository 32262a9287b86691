"""Dialect-aware INSERT ... ON CONFLICT for PostgreSQL and SQLite, of one row or of many; the time a row is written."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Table


def _insert(conn: Connection, table: Table):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert the row unless it conflicts; True if it was inserted."""
    return conn.execute(_insert(conn, table).values(**values).on_conflict_do_nothing()).rowcount == 1


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: list[str],
           update: list[str] | None = None) -> None:
    """Insert the row; on a conflict of `keys`, set the `update` columns (default: every other one given)."""
    stmt = _insert(conn, table).values(**values)
    changed = {k: stmt.excluded[k] for k in (update if update is not None else values) if k not in keys}
    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changed))


def insert_ignore_many(conn: Connection, table: Table, rows: list[dict[str, Any]], key: Column) -> list[Any]:
    """Insert the rows that do not conflict, in batches; the `key` of those inserted."""
    if not rows:
        return []
    return list(conn.execute(_insert(conn, table).on_conflict_do_nothing().returning(key), rows).scalars())


def upsert_many(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert the rows, or update those that conflict on `keys`, in batches (RETURNING makes SQLAlchemy send
    them as multi-row INSERTs, not one statement a row)."""
    if rows:
        stmt = _insert(conn, table)
        stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in rows[0]
                                                                     if k not in keys})
        conn.execute(stmt.returning(table.c[keys[0]]), rows).all()


def now() -> datetime:
    return datetime.now(UTC)
