"""Dialect-aware INSERT ... ON CONFLICT for PostgreSQL and SQLite, of one row or of many (COPY'd on PostgreSQL);
the time a row is written."""

import hashlib
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Connection, DateTime, Float, Integer, MetaData, Table, Uuid, select
from sqlalchemy.types import TypeDecorator

COPY_FROM = 100  # rows from which a statement's rows are `staged` (COPY and its table's two statements more)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


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
    """Insert the rows that do not conflict, in batches (or `staged`); the `key` of those inserted."""
    if not rows:
        return []
    if (stage := staged(conn, table, rows)) is not None:
        stmt = _insert(conn, table).from_select(list(stage.c.keys()), select(stage)).on_conflict_do_nothing()
        return _emptied(conn, stage, list(conn.execute(stmt.returning(key)).scalars()))
    return list(conn.execute(_insert(conn, table).on_conflict_do_nothing().returning(key), rows).scalars())


def upsert_many(conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Insert the rows, or update those that conflict on `keys`, in batches (RETURNING makes SQLAlchemy send
    them as multi-row INSERTs, not one statement a row), or `staged`."""
    if not rows:
        return
    stage = staged(conn, table, rows)
    stmt = _insert(conn, table) if stage is None else \
        _insert(conn, table).from_select(list(stage.c.keys()), select(stage))
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={k: stmt.excluded[k] for k in rows[0]
                                                                 if k not in keys})
    if stage is None:
        conn.execute(stmt.returning(table.c[keys[0]]), rows).all()
    else:
        _emptied(conn, stage, conn.execute(stmt))


def staged(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> Table | None:
    """The rows COPY'd into a temporary table of their columns, for one INSERT ... SELECT: on PostgreSQL through
    psycopg2, `COPY_FROM` rows or more of the same columns (a bulk chunk's). Each row then costs a line of text
    instead of SQLAlchemy's parameters and a VALUES tuple: half the CPU of a chunk's writes. None where it does
    not apply. The table lives as long as the connection, empty between statements (`_emptied`)."""
    if len(rows) < COPY_FROM or conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg2" or \
            any(row.keys() != rows[0].keys() for row in rows):
        return None
    stage = _stage_of(table, tuple(rows[0]))
    converters = [(c.name, *_to_copy(c.type, conn.dialect)) for c in stage.c]
    lines = io.StringIO()
    for row in rows:
        lines.write("\t".join(null if (v := row[name]) is None else to_text(v) for name, null, to_text in converters))
        lines.write("\n")
    lines.seek(0)
    schema = conn.get_execution_options().get("schema_translate_map", {}).get(table.schema, table.schema)
    target = f'"{schema}"."{table.name}"' if schema else f'"{table.name}"'
    columns = ", ".join(f'"{c.name}"' for c in stage.c)
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS "{stage.name}" ON COMMIT DELETE ROWS AS '
                       f"SELECT {columns} FROM {target} WITH NO DATA")
        cursor.copy_expert(f'COPY "{stage.name}" ({columns}) FROM STDIN', lines)
    return stage


@cache
def _stage_of(table: Table, columns: tuple[str, ...]) -> Table:
    digest = hashlib.sha1(repr(columns).encode()).hexdigest()[:8]  # noqa: S324 - a name, not a secret
    return Table(f"stage_{table.name}_{digest}", MetaData(), *(Column(c, table.c[c].type) for c in columns))


def _emptied(conn: Connection, stage: Table, result: Any) -> Any:
    with conn.connection.dbapi_connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{stage.name}"')
    return result


def _to_copy(column_type: Any, dialect: Any) -> tuple[str, Callable[[Any], str]]:
    """How None, and any other value, of a column of this type is written in COPY's text format, as SQLAlchemy
    binds it: a TypeDecorator's own conversion first; None as NULL, but as JSON's null in a JSON column; JSON
    encoded (JSON escapes control characters: only its backslashes are doubled); a timestamp in ISO 8601 with its
    zone; an enum as its value; text with its tabs, line ends and backslashes escaped."""
    if isinstance(column_type, TypeDecorator):
        bind, (null, to_text) = column_type.process_bind_param, _to_copy(column_type.impl, dialect)
        return null, lambda value: null if (bound := bind(value, dialect)) is None else to_text(bound)
    if isinstance(column_type, JSON):
        return "null", lambda value: json.dumps(value).replace("\\", "\\\\")
    if isinstance(column_type, Uuid | Integer | Float | Boolean):
        return "\\N", str
    if isinstance(column_type, DateTime):
        return "\\N", datetime.isoformat
    return "\\N", _text


def _text(value: Any) -> str:
    text = str(value.value if isinstance(value, Enum) else value)
    return text.translate(_COPY_ESCAPES) if "\\" in text or "\t" in text or "\n" in text or "\r" in text else text


def now() -> datetime:
    return datetime.now(UTC)
