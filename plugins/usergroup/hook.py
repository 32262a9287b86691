"""UserGroupHook: Airflow connection -> SQLAlchemy engine -> the subscription store."""

import os
from functools import cached_property
from pathlib import Path

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from usergroup.store.engine import DEFAULT_DB_SCHEMA, create_store_engine
from usergroup.store.repository import Store

EMBEDDED_DB_FILE = "usergroup.db"


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or "~/airflow").expanduser()


class UserGroupHook(BaseHook):
    """The store of User Group subscriptions, reached through an Airflow connection.

    The connection is a PostgreSQL connection (its "schema" field is the database name) or an SQLite one
    (`sqlite:///abs/path.db`, or JSON with `host` set to the path). The extra `{"db_schema": "..."}` names the
    database schema of our tables (default `usergroup`). When the connection is not defined, the store is
    the embedded SQLite file `$AIRFLOW_HOME/usergroup.db`, never Airflow's metadata database.
    """

    conn_name_attr = "usergroup_conn_id"
    default_conn_name = "usergroup_default"
    conn_type = "usergroup"
    hook_name = "User Group subscription store"

    def __init__(self, usergroup_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.usergroup_conn_id = usergroup_conn_id

    @cached_property
    def url_and_schema(self) -> tuple[URL, str]:
        try:
            conn = self.get_connection(self.usergroup_conn_id)
        except AirflowNotFoundException:
            path = airflow_home() / EMBEDDED_DB_FILE
            self.log.info("Connection %r is not defined: using the embedded SQLite store %s",
                          self.usergroup_conn_id, path)
            return URL.create("sqlite", database=str(path)), DEFAULT_DB_SCHEMA
        return connection_url(conn), conn.extra_dejson.get("db_schema") or DEFAULT_DB_SCHEMA

    @cached_property
    def engine(self) -> Engine:
        url, db_schema = self.url_and_schema
        return create_store_engine(url, db_schema)

    @cached_property
    def store(self) -> Store:
        return Store(self.engine)

    def get_conn(self) -> Engine:
        return self.engine


def connection_url(conn) -> URL:
    """The SQLAlchemy URL of an Airflow connection of type postgres or sqlite."""
    if conn.conn_type in ("postgres", "postgresql"):
        return URL.create("postgresql+psycopg2", username=conn.login or None, password=conn.password or None,
                          host=conn.host or None, port=conn.port, database=conn.schema or None)
    if conn.conn_type == "sqlite":
        path = conn.host or (f"/{conn.schema}" if conn.schema else "")
        if not path:
            raise ValueError(f"connection {conn.conn_id!r}: an SQLite connection needs the database file's path")
        return URL.create("sqlite", database=path)
    raise ValueError(f"connection {conn.conn_id!r} has type {conn.conn_type!r}: the User Group store needs "
                     "a 'postgres' or 'sqlite' connection")
