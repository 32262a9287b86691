"""UserGroupHook: Airflow connection -> SQLAlchemy engine -> the subscription store."""

from functools import cached_property

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from sqlalchemy import Engine
from sqlalchemy.engine import URL, make_url

from usergroup.store.connect import DEFAULT_DB_SCHEMA, create_store_engine
from usergroup.store.repository import Store

OUR_EXTRAS = {"db_schema"}  # the connection's extras that are ours, not the database driver's


class StoreConnectionError(ValueError):
    """The store's connection is missing or unusable: no retry cures that."""


class UserGroupHook(BaseHook):
    """The store of User Group subscriptions, reached through an Airflow connection, and only through it.

    The connection is a PostgreSQL connection (its "schema" field is the database name; every other extra,
    `sslmode`, `options`, keepalives, ..., reaches libpq as it does through PostgresHook) or, for the embedded
    store that `make run` and `make up` define, an SQLite one (`sqlite:///abs/path.db`, or JSON with `host` set
    to the path). The extra `db_schema` names the database schema of our tables (default `usergroup`).
    A missing connection is an error: the store never silently moves to a local file.
    """

    conn_name_attr = "usergroup_conn_id"
    default_conn_name = "usergroup_default"
    conn_type = "postgres"  # the deployed store; an sqlite connection is the embedded one
    hook_name = "User Group subscription store"

    def __init__(self, usergroup_conn_id: str = default_conn_name, **kwargs) -> None:
        super().__init__(**kwargs)
        self.usergroup_conn_id = usergroup_conn_id

    @cached_property
    def url_and_schema(self) -> tuple[URL, str]:
        try:
            conn = self.get_connection(self.usergroup_conn_id)
        except AirflowNotFoundException:
            raise StoreConnectionError(
                f"the Airflow connection {self.usergroup_conn_id!r} is not defined: the usergroup store is reached "
                f"only through it. Define it on every machine that runs usergroup tasks (AIRFLOW_CONN_"
                f"{self.usergroup_conn_id.upper()}, the UI, or a secrets backend such as the Airflow home's "
                f"connections.json: scripts/homeconn.py)") from None
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


# PostgresHook.ignored_extra_options (a test keeps the copy equal): extras that are the hook's, not libpq's.
POSTGRES_HOOK_EXTRAS = frozenset({"iam", "redshift", "redshift-serverless", "cursor", "cluster-identifier",
                                  "workgroup-name", "aws_conn_id", "sqlalchemy_scheme", "sqlalchemy_query",
                                  "azure_conn_id"})
TOKEN_EXTRAS = ("iam", "azure_conn_id")  # the password is a cloud token only the provider's hook can fetch


def connection_url(conn) -> URL:
    """The SQLAlchemy URL of an Airflow connection, as the provider hooks build it, with every driver option.

    A plain PostgreSQL connection's URL is built here as PostgresHook.sqlalchemy_url builds it: importing the
    provider would cost every task process some 70-100 ms of CPU. One that logs in with a cloud token (IAM,
    Azure) goes through PostgresHook."""
    if conn.conn_type in ("postgres", "postgresql"):
        extras = conn.extra_dejson
        options = {k: str(v) for k, v in extras.items() if k not in POSTGRES_HOOK_EXTRAS and k not in OUR_EXTRAS}
        scheme = extras.get("sqlalchemy_scheme") or "postgresql+psycopg2"
        if any(extras.get(k) for k in TOKEN_EXTRAS):
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            return PostgresHook(connection=conn, sqlalchemy_scheme=scheme).sqlalchemy_url.update_query_dict(options)
        query = extras.get("sqlalchemy_query", {})
        if not isinstance(query, dict):
            raise StoreConnectionError(f"connection {conn.conn_id!r}: the extra 'sqlalchemy_query' must be an object")
        return URL.create(drivername=scheme, username=conn.login, password=conn.password, host=conn.host,
                          port=conn.port, database=conn.schema, query=query).update_query_dict(options)
    if conn.conn_type == "sqlite":
        from airflow.providers.sqlite.hooks.sqlite import SqliteHook

        url = make_url(SqliteHook(sqlite_conn_id=conn.conn_id).get_uri())
        if url.database in (None, "", "/"):
            raise StoreConnectionError(f"connection {conn.conn_id!r}: an SQLite connection needs the database "
                                       "file's path")
        return url.difference_update_query(OUR_EXTRAS)
    raise StoreConnectionError(f"connection {conn.conn_id!r} has type {conn.conn_type!r}: the User Group store "
                               "needs a 'postgres' or 'sqlite' connection")
